"""Train the unit ranker (kb/ranker.py) on questions made from the corpus's own structure, plus calibration.jsonl.

Never on the tuning or test questions: those measure it. The training questions are
- a unit's heading, its number stripped ("Obligations of deployers of high-risk AI systems" -> ai-act:art-26),
  for some of them with the act's name added ("… under the AI Act"), as users often say which act they mean;
- a definition asked for ("What is a 'deployer'?" / "Hvad er en »idriftsætter«?" -> the article that defines it);
- the opening words of a recital, for the articles it cites (recital 93 -> Article 26), the recital itself left out;
- the answerable questions of eval/datasets/calibration.jsonl (real questions, weighted higher).
Each question's candidate units (kb.retrieval.unit_candidates) are labelled 1 when they hold a gold reference.
A logistic regression (scikit-learn) is fitted on the standardised features; its regularisation is chosen by
cross-validation over training questions (grouped by question). The weights go to kb/data/ranker.json (or --out).

    python -m eval.train_ranker [--out kb/data/ranker.json] [--per-doc 80] [--calibration-weight 8] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.knowledge_base import KnowledgeBase
from kb.provisions import QUESTION_ACT_NAMES, defined_term
from kb.question import Question
from kb.ranker import FEATURES, MODEL_FILE, RankerModel
from kb.settings import Settings
from kb.unit_index import unit_kind, unit_of

CALIBRATION = Path(__file__).parent / "datasets" / "calibration.jsonl"
NAMED_SHARE = 0.4  # the share of heading questions that name their act
_NUMBERING = re.compile(
    r"^\s*(?:(?:Article|Artikel|Art\.|Annex|Bilag|Section|Afsnit|Punkt|Kapitel|Chapter)\s+[\dIVXLC]+[a-z]?\.?|§\s*\d+\s*[a-z]?\.?|[\d.]+)\s*[-–:.]?\s*",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\b(?:Articles?|Artikel|artikel|artikler|Annex|bilag|§§?)\s*[\dIVXLC]+[a-z]?(?:\(\d+\))*", re.IGNORECASE)


@dataclass
class TrainingQuestion:
    text: str
    gold_units: set[str]
    source: str  # heading | definition | recital | calibration
    exclude: frozenset[str] = frozenset()
    weight: float = 1.0


def _clean_heading(heading: str) -> str:
    text = _NUMBERING.sub("", heading.split("\n")[0]).strip(" .–-")
    return text


def generated_questions(kb: KnowledgeBase, per_doc: int, rng: random.Random) -> list[TrainingQuestion]:
    """Questions from headings, definitions and recitals of every in-force text."""
    units = kb.units
    act_names: dict[str, list[str]] = {}
    for name, doc_id in sorted(QUESTION_ACT_NAMES.items()):
        act_names.setdefault(doc_id, []).append(name)
    by_doc: dict[str, list[TrainingQuestion]] = {}
    seen: set[str] = set()
    for row in units.rows:
        if not row.in_force or unit_kind(row.ref) in ("recital", "front", "page"):
            continue
        heading = _clean_heading(row.heading)
        if len(heading.split()) < 3 or heading.lower() in seen:
            continue
        seen.add(heading.lower())
        names = act_names.get(row.doc_id)
        if names and rng.random() < NAMED_SHARE:  # users often say which act they mean: "… efter MDR"
            name = rng.choice(names)
            heading = f"{heading} efter {name}" if row.language == "da" else f"{heading} under the {name}"
        by_doc.setdefault(row.doc_id, []).append(TrainingQuestion(heading, {row.ref}, "heading"))
    out: list[TrainingQuestion] = []
    for questions in by_doc.values():
        rng.shuffle(questions)
        out += questions[:per_doc]
    definitions: list[TrainingQuestion] = []
    recital_rows = [r for r in units.rows if r.in_force and unit_kind(r.ref) == "recital" and r.passage_ids]
    rng.shuffle(recital_rows)
    recital_rows = recital_rows[: 8 * per_doc]
    passages = kb.reader.passages_by_id([r.passage_ids[0] for r in recital_rows])
    for row in recital_rows:
        passage = passages.get(row.passage_ids[0])
        if passage is None:
            continue
        cited = {unit_of(c) for c in passage.cites if c.partition(":")[0] == passage.doc_id and unit_kind(c) != "recital"}
        words = _CITATION.sub("", passage.text).split()
        if cited and len(words) >= 8:
            out.append(TrainingQuestion(" ".join(words[:30]), cited, "recital", frozenset({row.ref})))
    definition_rows = [r for r in units.rows if r.in_force and r.ref.endswith((":art-2", ":art-3", ":art-4", ":§-2", ":§-3"))]
    for row in definition_rows:
        for passage in kb.reader.passages_by_id(row.passage_ids).values():
            term = defined_term(passage.text)
            if term:
                text = f"Hvad er {term}?" if passage.language == "da" else f"What is {term}?"
                definitions.append(TrainingQuestion(text, {row.ref}, "definition"))
    rng.shuffle(definitions)
    out += definitions[: 4 * per_doc]
    return out


def calibration_questions(path: Path = CALIBRATION, weight: float = 3.0) -> list[TrainingQuestion]:
    from eval.splits import read_jsonl, refuse_locked

    rows = read_jsonl(path)
    refuse_locked(path, rows)  # never trained on the locked test set
    out = []
    for row in rows:
        if row.get("answerable") and row.get("gold_refs"):
            out.append(TrainingQuestion(row["question"], {unit_of(g) for g in row["gold_refs"]}, "calibration", weight=weight))
    return out


def features_for(kb: KnowledgeBase, q: TrainingQuestion) -> tuple[list[str], np.ndarray]:
    question = Question.parse(q.text)
    hits = kb.search(q.text, k=40)
    if q.exclude:
        hits = [h for h in hits if unit_of(h.passage.ref) not in q.exclude]
    ranked = kb.rank_units(question, hits, [], exclude=q.exclude, trained=False)
    refs = [r.ref for r in ranked]
    x = np.asarray([[r.features[name] for name in FEATURES] for r in ranked], dtype=np.float64)
    return refs, x


def train(kb: KnowledgeBase, per_doc: int = 80, seed: int = 7, calibration_weight: float = 8.0, log=print) -> RankerModel:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    rng = random.Random(seed)
    questions = generated_questions(kb, per_doc, rng) + calibration_questions(weight=calibration_weight)
    xs, ys, ws, groups = [], [], [], []
    counts: dict[str, int] = {}
    for g, q in enumerate(questions):
        refs, x = features_for(kb, q)
        labels = np.array([ref in q.gold_units for ref in refs], dtype=np.int64)
        if not labels.any():
            continue  # no candidate holds the answer: nothing to learn about ranking from it
        counts[q.source] = counts.get(q.source, 0) + 1
        xs.append(x)
        ys.append(labels)
        ws.append(np.full(len(labels), q.weight))
        groups.append(np.full(len(labels), g))
    x, y, w, group = np.vstack(xs), np.concatenate(ys), np.concatenate(ws), np.concatenate(groups)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    log(f"training questions with a candidate holding the answer: {counts}; candidate rows {len(y)}")

    def mrr(model: LogisticRegression, idx: np.ndarray) -> float:
        scores = model.decision_function(z[idx])
        total, n = 0.0, 0
        for g in np.unique(group[idx]):
            sel = group[idx] == g
            order = np.argsort(-scores[sel], kind="stable")
            hits = np.flatnonzero(y[idx][sel][order])
            total += 1.0 / (1 + hits[0]) if len(hits) and hits[0] < 10 else 0.0
            n += 1
        return total / max(n, 1)

    best_c, best = 1.0, -1.0
    for c in (0.01, 0.1, 1.0, 10.0):
        folds = []
        for train_idx, test_idx in GroupKFold(n_splits=5).split(z, y, group):
            model = LogisticRegression(C=c, max_iter=2000).fit(z[train_idx], y[train_idx], sample_weight=w[train_idx])
            folds.append(mrr(model, test_idx))
        score = float(np.mean(folds))
        log(f"C={c}: cross-validated unit MRR@10 {score:.3f}")
        if score > best:
            best_c, best = c, score
    model = LogisticRegression(C=best_c, max_iter=2000).fit(z, y, sample_weight=w)
    return RankerModel(
        weights=[round(float(v), 6) for v in model.coef_[0]],
        bias=round(float(model.intercept_[0]), 6),
        mean=[round(float(v), 6) for v in mean],
        scale=[round(float(v), 6) for v in scale],
        trained_on={
            "questions": counts,
            "candidate_rows": len(y),
            "C": best_c,
            "per_doc": per_doc,
            "calibration_weight": calibration_weight,
            "cv_unit_mrr@10": round(best, 4),
            "passages": int(kb.catalog["passages"]),
            "note": "generated from headings, definitions and recitals of the corpus, plus calibration.jsonl; "
            "no tuning or test question",
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    parser.add_argument("--per-doc", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibration-weight", type=float, default=8.0, help="weight of a real calibration question")
    args = parser.parse_args(argv)
    kb = KnowledgeBase(Settings())
    if not kb.is_built():
        sys.exit(f"the knowledge base in {kb.settings.data_dir} is not built: run `kb ingest`")
    model = train(kb, args.per_doc, args.seed, args.calibration_weight, log=lambda m: print(m, file=sys.stderr))
    model.save(args.out)
    print(json.dumps(model.trained_on, indent=1))


if __name__ == "__main__":
    main()
