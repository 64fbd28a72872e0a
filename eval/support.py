"""When does a cited passage support an answer sentence? The entailment test behind citation precision and recall.

Definition. `support_score(sentence, passages)` is the weighted share of the
sentence's content words that occur in the passages' text:

- both texts are tokenised alike (`kb.keywords.tokenize`: lower-cased, stop words
  dropped, stemmed in the language of the passages, numbers kept), so inflections
  ("logfiler" / "logfilerne") match;
- a number weighs NUMBER_WEIGHT times a word: a sentence that changes "six months"
  to "ten years" or "Article 32" to "Article 35" loses most of its score;
- each distinct token counts once.

`supports(sentence, passages)` is `support_score >= SUPPORT_THRESHOLD`. An extractive
sentence (taken from its passage, as our answerer's are) scores 1.0; a sentence
that adds a claim the passage lacks ("... and must report monthly") drops below
the threshold. The test is lexical: it cannot see a paraphrase that changes the
words, a translation (Danish claim, English passage) or a negation that keeps
them; those are the disagreements the calibration reports.

Calibration. SUPPORT_THRESHOLD was chosen by `python -m eval.support` on the
hand-labelled sample eval/datasets/support_labels.jsonl (65 pairs of sentence,
passage and a human yes/no: extracts, paraphrases, translations, partial support,
altered numbers, contradictions and sentences checked against the wrong passage,
in Danish and English), as the threshold with the best Cohen's kappa. Agreement
at that threshold is printed by the same command and asserted by tests/test_eval.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kb.keywords import tokenize
from kb.language import detect_language

LABELS_FILE = Path(__file__).resolve().parent / "datasets" / "support_labels.jsonl"
NUMBER_WEIGHT = 3.0
# Calibrated on support_labels.jsonl (python -m eval.support): best kappa (0.495, accuracy 0.738, plateau 0.88-0.90).
SUPPORT_THRESHOLD = 0.89


def _weighted_tokens(text: str, language: str) -> dict[str, float]:
    return {t: (NUMBER_WEIGHT if t.isdigit() else 1.0) for t in tokenize(text, language)}


def support_score(sentence: str, passages: str | Sequence[str]) -> float:
    """Weighted share of the sentence's content tokens found in the passage(s); 1.0 for an empty sentence."""
    texts = [passages] if isinstance(passages, str) else list(passages)
    joined = "\n".join(texts)
    if not joined.strip():
        return 0.0
    language = detect_language(joined)
    wanted = _weighted_tokens(sentence, language)
    if not wanted:
        return 1.0
    have = set(tokenize(joined, language))
    total = sum(wanted.values())
    return sum(w for t, w in wanted.items() if t in have) / total


def supports(sentence: str, passages: str | Sequence[str], threshold: float = SUPPORT_THRESHOLD) -> bool:
    """True when the passage(s) together support the sentence (support_score at or above the threshold)."""
    return support_score(sentence, passages) >= threshold


# --- calibration against the hand labels ------------------------------------------------


@dataclass
class Agreement:
    """How well `supports` agrees with the human labels at one threshold."""

    threshold: float
    n: int
    accuracy: float
    kappa: float
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    by_kind: dict[str, dict[str, int]]
    disagreements: list[dict[str, object]]

    def summary(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "n": self.n,
            "accuracy": round(self.accuracy, 3),
            "kappa": round(self.kappa, 3),
            "confusion": {
                "tp": self.true_positive,
                "fp": self.false_positive,
                "fn": self.false_negative,
                "tn": self.true_negative,
            },
            "by_kind": self.by_kind,
        }


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two binary raters: (observed agreement - chance agreement) / (1 - chance agreement)."""
    n = len(a)
    if n == 0:
        return 0.0
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if chance == 1 else (observed - chance) / (1 - chance)


def load_labels(path: Path = LABELS_FILE) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(labels: Iterable[dict[str, object]], threshold: float = SUPPORT_THRESHOLD) -> Agreement:
    """Accuracy, kappa and confusion of `supports` against the labels."""
    rows = list(labels)
    human = [bool(r["supported"]) for r in rows]
    scores = [support_score(str(r["sentence"]), str(r["passage"])) for r in rows]
    machine = [s >= threshold for s in scores]
    kinds: dict[str, Counter[str]] = {}
    disagreements = []
    for r, h, m, s in zip(rows, human, machine, scores, strict=True):
        kinds.setdefault(str(r["kind"]), Counter())["agree" if h == m else "disagree"] += 1
        if h != m:
            disagreements.append({"id": r["id"], "kind": r["kind"], "human": h, "score": round(s, 3), "sentence": r["sentence"]})
    n = len(rows)
    return Agreement(
        threshold=threshold,
        n=n,
        accuracy=sum(h == m for h, m in zip(human, machine, strict=True)) / max(n, 1),
        kappa=cohen_kappa(human, machine),
        true_positive=sum(h and m for h, m in zip(human, machine, strict=True)),
        false_positive=sum((not h) and m for h, m in zip(human, machine, strict=True)),
        false_negative=sum(h and (not m) for h, m in zip(human, machine, strict=True)),
        true_negative=sum((not h) and (not m) for h, m in zip(human, machine, strict=True)),
        by_kind={k: dict(v) for k, v in sorted(kinds.items())},
        disagreements=disagreements,
    )


def calibrate(labels: Sequence[dict[str, object]]) -> Agreement:
    """The threshold (0.50 to 0.99, step 0.01) with the best kappa; of a plateau of equal kappa, its middle
    (so no labelled score sits right at the threshold)."""
    rows = list(labels)
    candidates = [agreement(rows, step / 100) for step in range(50, 100)]
    top = max(round(c.kappa, 9) for c in candidates)
    plateau = [c for c in candidates if round(c.kappa, 9) == top]
    return agreement(rows, round(plateau[len(plateau) // 2].threshold, 2))


def main() -> None:
    labels = load_labels()
    best = calibrate(labels)
    current = agreement(labels)
    print(f"labels: {len(labels)} ({sum(bool(r['supported']) for r in labels)} supported)")
    print(f"best threshold: {best.threshold:.2f}  accuracy {best.accuracy:.3f}  kappa {best.kappa:.3f}")
    print(f"SUPPORT_THRESHOLD {SUPPORT_THRESHOLD:.2f}: {json.dumps(current.summary(), ensure_ascii=False)}")
    for d in current.disagreements:
        print(f"  {d['id']} {d['kind']:<14} human={d['human']!s:<5} score={d['score']}  {d['sentence']}")


if __name__ == "__main__":
    main()
