"""The evaluation metrics, each defined where it is computed, and their aggregation by language, document and scenario.

Matching rule (DESIGN.md): a retrieved or cited reference *hits* a gold reference
when it equals it or is a sub-reference of it (`kb.references.covers(gold, ref)`:
`ai-act:art-26` is hit by `ai-act:art-26.1`, never by `ai-act:art-260`; a parent
`ai-act:art-26` does not hit a gold `ai-act:art-26.1`). A ranking is first reduced
to its DISTINCT references in rank order (two pieces or two language versions of
one provision are one retrieved item), and each gold reference counts once.

Per question (answerable, with gold references):

- recall@k: share of the gold references hit by at least one of the first k
  distinct retrieved references.
- MRR@10: 1 / rank of the first distinct retrieved reference that hits any gold
  reference within the first 10; 0 when none does.
- nDCG@10: binary gain; the retrieved reference at rank i (1-based, distinct refs)
  gains 1 when it hits a gold reference not hit at an earlier rank; DCG = sum of
  gain / log2(i + 1); normalised by the ideal DCG of min(|gold|, 10) hits at the top.

Of the answer (answerable questions with gold references, answering systems):

- answer recall@5: recall@5 of the answer's CITATIONS, in the order of their
  citation numbers ([1] first), distinct references as above. The citations are
  every numbered source of the answer, the "see also" sources after the quoted
  ones included: listing more pointers can raise this recall, and lowers the
  cited-gold precision below, so the two are read together. A declined answer
  cites nothing and scores 0: the asker got no provision. Beside it, the
  retrieval ranking's recall@5 on the same questions, and the gap
  `answer_recall_gap@5` = retrieval recall@5 - answer recall@5 (positive: the
  answer drops provisions its own ranking found).
- cited-gold precision: share of the answer's distinct cited references that hit
  a gold reference (over answered, answerable questions). It can fail: citing
  recitals, front matter or another act's provisions lowers it.
- key facts in the body (`key_fact_recall_body`): share of the question's key
  facts of at least two words that occur in the answer's BODY, case-insensitive,
  whitespace-normalised. The body is the answer text minus its list of sources
  and see-also passages and minus every template line (the scenario heading, the
  "provisions that typically matter" line, the "quoted from the English text"
  note, the refusal; `answer_body`), with the [n] marks removed. One-word key facts
  ("databehandler") are left out: a word anywhere in a long quote says little.
  Questions without a key fact of two or more words are left out
  (`key_fact_body_n` says how many remain); a declined answer scores 0.
- key-fact recall (DESIGN's `key_fact_recall`, kept for continuity): every key
  fact, searched in the whole answer text, sources list included, so a heading in
  the sources list counts. Read the body figure.

Integrity checks, not quality (ALCE, Gao et al. 2023, support decided by
`eval.support.supports`, calibrated lexical entailment):

- citation recall: share of the answer's sentences whose cited passages, taken
  together, support the sentence (a sentence with no citation is not supported).
- citation precision: share of the answer's citations (sentence, citation pairs)
  that are relevant: the cited passage alone supports the sentence, or the
  sentence is supported by all its citations together but no longer without this
  one (the citation is needed).
- faithfulness: share of the claims of the answer *as shown* (the `answer` text,
  each line or sentence carrying [n] marks; template lines such as the sources
  list are skipped) that are supported by the passages their [n] marks point to.

These three are 1.0 by construction for an extractive answerer: every sentence is
copied from the passage it cites, and the support test checks that its words occur
in that passage. They were 1.0 for ours and for the naive pipeline alike, so they
cannot tell a good answer from a bad one. They stay in the JSON (DESIGN lists the
first two) as checks that the rendering keeps its citations (they would drop for an
LLM generator or a misnumbering bug), and they are NOT gated (eval/gate.py).

Declining (systems that can decline):

- abstention precision: of the questions the system declined, the share that are
  unanswerable; abstention recall: of the unanswerable questions, the share it
  declined; answerable declined rate: of the answerable, the share declined;
  abstention accuracy: share of questions where declining == unanswerable.
  Trivial baselines (`trivial_baselines`): always answer (recall 0, declined rate 0,
  accuracy = share answerable) and always decline (precision = share
  unanswerable, recall 1, accuracy = share unanswerable).

Per question, other:

- scenario accuracy: over questions with a gold scenario, the share whose
  scenario the system infers (asked WITHOUT the scenario) equals the gold one.
  Trivial baseline: always the majority gold scenario of the evaluated set.
- latency p50/p95: median and 95th percentile (linear interpolation) of the time
  one call takes, in milliseconds (`ask` for our system, the retrieval call for
  retrieval-only baselines).

Aggregates are means over the questions a metric applies to; a metric that
applies to none is null. Groups: overall, per language, per document (doc id of
the first gold reference; "unanswerable" for questions without one) and per
scenario (the gold scenario; "none" when the question has none).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.support import supports
from kb.references import covers

K_VALUES = (1, 5, 10)


# --- retrieval ------------------------------------------------------------------------------


def distinct_refs(refs: Iterable[str]) -> list[str]:
    """References in first-seen order, each once."""
    seen: dict[str, None] = {}
    for ref in refs:
        seen.setdefault(ref, None)
    return list(seen)


def hits_gold(ref: str, gold: Sequence[str]) -> list[int]:
    """Indices of the gold references that `ref` hits (equal or sub-reference)."""
    return [i for i, g in enumerate(gold) if covers(g, ref)]


def recall_at_k(gold: Sequence[str], retrieved: Sequence[str], k: int) -> float:
    """Share of gold references hit within the first k distinct retrieved references."""
    if not gold:
        raise ValueError("recall needs gold references")
    found: set[int] = set()
    for ref in distinct_refs(retrieved)[:k]:
        found.update(hits_gold(ref, gold))
    return len(found) / len(gold)


def mrr_at_k(gold: Sequence[str], retrieved: Sequence[str], k: int = 10) -> float:
    """1 / rank of the first distinct retrieved reference hitting a gold reference within k; else 0."""
    for rank, ref in enumerate(distinct_refs(retrieved)[:k], 1):
        if hits_gold(ref, gold):
            return 1.0 / rank
    return 0.0


def ndcg_at_k(gold: Sequence[str], retrieved: Sequence[str], k: int = 10) -> float:
    """Binary nDCG: a rank gains 1 when it hits a gold reference not hit before; ideal = all gold at the top."""
    if not gold:
        raise ValueError("nDCG needs gold references")
    found: set[int] = set()
    dcg = 0.0
    for rank, ref in enumerate(distinct_refs(retrieved)[:k], 1):
        new = set(hits_gold(ref, gold)) - found
        if new:
            found |= new
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal


# --- grounding (ALCE) ---------------------------------------------------------------------

Support = Callable[[str, Sequence[str]], bool]


@dataclass
class CitedSentence:
    """An answer sentence and the texts of the passages it cites (in citation order)."""

    text: str
    cited: list[str] = field(default_factory=list)


def sentence_supported(sentence: CitedSentence, support: Support = supports) -> bool:
    """ALCE citation recall for one sentence: its citations together support it."""
    return bool(sentence.cited) and support(sentence.text, sentence.cited)


def citation_relevance(sentence: CitedSentence, support: Support = supports) -> list[bool]:
    """ALCE citation precision for one sentence: per citation, does it support alone or is it needed?"""
    together = sentence_supported(sentence, support)
    out = []
    for i, passage in enumerate(sentence.cited):
        if support(sentence.text, [passage]):
            out.append(True)
            continue
        rest = sentence.cited[:i] + sentence.cited[i + 1 :]
        out.append(together and not (rest and support(sentence.text, rest)))
    return out


def citation_scores(sentences: Sequence[CitedSentence], support: Support = supports) -> tuple[float | None, float | None]:
    """(citation precision, citation recall) of one answer; None where the answer has no sentence/citation."""
    if not sentences:
        return None, None
    recall = sum(sentence_supported(s, support) for s in sentences) / len(sentences)
    relevance = [r for s in sentences for r in citation_relevance(s, support)]
    precision = sum(relevance) / len(relevance) if relevance else None
    return precision, recall


_MARK = re.compile(r"\[(\d+)\]")
_CLAIM_SPLIT = re.compile(r"(?<=\])\s+(?=\S)")


def shown_claims(answer_text: str, skip: Callable[[str], bool] | None = None) -> list[tuple[str, list[int]]]:
    """The claims of a rendered answer: each line (split after its [n] marks) with the numbers it carries.

    Lines without a mark are template lines (headings, the sources list, "(quoted from the English text)")
    and are left out, as are lines for which `skip` says so.
    """
    claims = []
    for line in answer_text.splitlines():
        line = line.strip()
        if not line or re.match(r"^\[\d+\]\s+\S+:\S", line):  # a sources-list entry: "[1] ai-act:art-26 – ..."
            continue
        for part in _CLAIM_SPLIT.split(line):
            marks = [int(m) for m in _MARK.findall(part)]
            if not marks or (skip and skip(part)):
                continue
            text = _MARK.sub("", part).strip()
            if text:
                claims.append((text, marks))
    return claims


def faithfulness(answer_text: str, passages_by_n: dict[int, str], skip: Callable[[str], bool] | None = None,
                 support: Support = supports) -> float | None:
    """Share of the shown claims supported by the passages their [n] marks point to; None without claims."""
    claims = shown_claims(answer_text, skip)
    if not claims:
        return None
    ok = 0
    for text, marks in claims:
        cited = [passages_by_n[n] for n in marks if n in passages_by_n]
        ok += bool(cited) and support(text, cited)
    return ok / len(claims)


def cited_gold_precision(gold: Sequence[str], cited_refs: Sequence[str]) -> float | None:
    """Share of the distinct cited references that hit a gold reference; None without citations."""
    refs = distinct_refs(cited_refs)
    if not refs:
        return None
    return sum(bool(hits_gold(r, gold)) for r in refs) / len(refs)


# --- answers ---------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def key_fact_recall(key_facts: Sequence[str], answer_text: str) -> float:
    """Share of key facts occurring in the answer text (case-insensitive, whitespace-normalised)."""
    if not key_facts:
        raise ValueError("key-fact recall needs key facts")
    text = _normalise(answer_text)
    return sum(_normalise(f) in text for f in key_facts) / len(key_facts)


MIN_KEY_FACT_WORDS = 2
_SOURCE_ENTRY = re.compile(r"^\[\d+\]\s+\S+:\S")  # "[1] ai-act:art-26 – heading (version, da)"
_LIST_ENTRY = re.compile(r"^[-•*]\s+\S+:\S+\s+[–-]")  # "- ai-act:art-26 – heading" (see also)


def template_pattern(template: str) -> re.Pattern[str]:
    """A whole-line pattern for a template string: each {field} matches anything, a trailing ':' is optional."""
    parts = re.split(r"\{[a-z_]+\}", template.strip().rstrip(":"))
    return re.compile(".*?".join(re.escape(p) for p in parts) + r":?", re.DOTALL)


def answer_body(answer_text: str, templates: Sequence[str] = (), list_headings: Sequence[str] = ()) -> str:
    """The answer's body: its text without the sources / see-also lists, template lines and [n] marks.

    `templates` are the answerer's template strings ({field} placeholders allowed): a line that is one of them
    is left out. A line equal to one of `list_headings` (Sources:, See also:) ends the body; list entries
    that look like "[1] ref – heading" or "- ref – heading" are left out wherever they stand.
    """
    patterns = [template_pattern(t) for t in templates if t.strip()]
    headings = {h.strip().rstrip(":").casefold() for h in list_headings if h.strip()}
    kept = []
    for line in answer_text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.rstrip(":").casefold() in headings:
            break
        if _SOURCE_ENTRY.match(line) or _LIST_ENTRY.match(line):
            continue
        bare = _MARK.sub("", line).strip()
        if any(p.fullmatch(line) or p.fullmatch(bare) for p in patterns):
            continue
        kept.append(re.sub(r"\s*\[\d+\]", " ", line))
    return "\n".join(kept)


def body_key_facts(key_facts: Sequence[str]) -> list[str]:
    """The key facts the body measure counts: those of at least MIN_KEY_FACT_WORDS words."""
    return [f for f in key_facts if len(f.split()) >= MIN_KEY_FACT_WORDS]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean in milliseconds of samples in seconds, by `percentile` (the one definition every
    benchmark and the evaluation use); zeros when there are none."""
    if not samples:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}
    return {
        "p50_ms": round(1000 * (percentile(samples, 50) or 0.0), 1),
        "p95_ms": round(1000 * (percentile(samples, 95) or 0.0), 1),
        "p99_ms": round(1000 * (percentile(samples, 99) or 0.0), 1),
        "mean_ms": round(1000 * sum(samples) / len(samples), 1),
    }


# --- one question's outcome, and aggregation -----------------------------------------------


@dataclass
class QuestionResult:
    """What one system did with one question, and the per-question metric values."""

    id: str
    question: str
    language: str
    scenario: str | None
    answerable: bool
    gold_refs: list[str]
    key_facts: list[str]
    retrieved_refs: list[str] | None = None  # ranking (None: the system does not retrieve)
    latency_ms: float | None = None
    answer_text: str | None = None  # None: the system does not answer
    answer_body: str | None = None  # the answer text without sources list, template lines and [n] marks
    cited_refs: list[str] = field(default_factory=list)  # in citation-number order
    abstained: bool | None = None  # None: the system cannot decline
    predicted_scenario: str | None = None
    citation_precision: float | None = None
    citation_recall: float | None = None
    faithfulness: float | None = None
    error: str | None = None

    @property
    def document(self) -> str:
        return self.gold_refs[0].split(":", 1)[0] if self.gold_refs else "unanswerable"

    @property
    def retrieval_applies(self) -> bool:
        return self.answerable and bool(self.gold_refs) and self.retrieved_refs is not None

    def recall(self, k: int) -> float | None:
        return recall_at_k(self.gold_refs, self.retrieved_refs or [], k) if self.retrieval_applies else None

    def key_fact_recall(self) -> float | None:
        if not (self.answerable and self.key_facts) or self.answer_text is None:
            return None
        return 0.0 if self.abstained else key_fact_recall(self.key_facts, self.answer_text)

    @property
    def answer_applies(self) -> bool:
        return self.answerable and bool(self.gold_refs) and self.answer_text is not None and self.error is None

    def answer_recall(self, k: int = 5) -> float | None:
        """Recall@k of the answer's citations (citation-number order); 0 for a declined answer."""
        if not self.answer_applies:
            return None
        return 0.0 if self.abstained else recall_at_k(self.gold_refs, self.cited_refs, k)

    def key_fact_recall_body(self) -> float | None:
        facts = body_key_facts(self.key_facts)
        if not (self.answerable and facts) or self.answer_text is None:
            return None
        if self.abstained:
            return 0.0
        return key_fact_recall(facts, self.answer_body if self.answer_body is not None else self.answer_text)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["document"] = self.document
        for k in K_VALUES:
            out[f"recall@{k}"] = self.recall(k)
        out["answer_recall@5"] = self.answer_recall(5)
        out["key_fact_recall"] = self.key_fact_recall()
        out["key_fact_recall_body"] = self.key_fact_recall_body()
        return out


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


METRIC_KEYS = (
    "n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_recall@5", "answer_recall_gap@5",
    "cited_gold_precision", "key_fact_recall_body", "key_fact_body_n", "key_fact_recall", "citation_precision",
    "citation_recall", "faithfulness", "scenario_accuracy", "abstention_precision", "abstention_recall",
    "abstention_accuracy", "answerable_declined_rate", "latency_ms_p50", "latency_ms_p95",
)


def summarize(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Every metric over a set of question results (see the module docstring for the definitions)."""
    retrieval = [r for r in results if r.retrieval_applies]
    answered = [r for r in results if r.answer_text is not None and not r.abstained and r.error is None]
    out: dict[str, Any] = {"n": len(results)}
    for k in K_VALUES:
        out[f"recall@{k}"] = _mean(r.recall(k) for r in retrieval)
    out["mrr@10"] = _mean(mrr_at_k(r.gold_refs, r.retrieved_refs or [], 10) for r in retrieval)
    out["ndcg@10"] = _mean(ndcg_at_k(r.gold_refs, r.retrieved_refs or [], 10) for r in retrieval)
    answer_scored = [r for r in results if r.answer_applies]
    out["answer_recall@5"] = _mean(r.answer_recall(5) for r in answer_scored)
    both = [r for r in answer_scored if r.retrieval_applies]
    out["answer_recall_gap@5"] = (
        _mean(r.recall(5) for r in both) - _mean(r.answer_recall(5) for r in both) if both else None  # type: ignore[operator]
    )
    out["citation_precision"] = _mean(r.citation_precision for r in answered)
    out["citation_recall"] = _mean(r.citation_recall for r in answered)
    out["faithfulness"] = _mean(r.faithfulness for r in answered)
    out["cited_gold_precision"] = _mean(
        cited_gold_precision(r.gold_refs, r.cited_refs) for r in answered if r.answerable and r.gold_refs
    )
    out["key_fact_recall"] = _mean(r.key_fact_recall() for r in results)
    body = [r.key_fact_recall_body() for r in results]
    out["key_fact_recall_body"] = _mean(body)
    out["key_fact_body_n"] = sum(v is not None for v in body)
    routed = [r for r in results if r.scenario is not None and r.predicted_scenario is not None]
    out["scenario_accuracy"] = _mean(float(r.predicted_scenario == r.scenario) for r in routed)
    can_decline = [r for r in results if r.abstained is not None]
    declined = [r for r in can_decline if r.abstained]
    unanswerable = [r for r in can_decline if not r.answerable]
    answerable = [r for r in can_decline if r.answerable]
    out["abstention_precision"] = sum(not r.answerable for r in declined) / len(declined) if declined else None
    out["abstention_recall"] = sum(bool(r.abstained) for r in unanswerable) / len(unanswerable) if unanswerable else None
    out["answerable_declined_rate"] = sum(bool(r.abstained) for r in answerable) / len(answerable) if answerable else None
    out["abstention_accuracy"] = (
        sum(bool(r.abstained) != r.answerable for r in can_decline) / len(can_decline) if can_decline else None
    )
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    out["latency_ms_p50"] = percentile(latencies, 50)
    out["latency_ms_p95"] = percentile(latencies, 95)
    out["errors"] = sum(r.error is not None for r in results)
    return {k: (_round(v) if isinstance(v, float) else v) for k, v in out.items()}


def grouped(results: Sequence[QuestionResult], key: Callable[[QuestionResult], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    return {name: summarize(groups[name]) for name in sorted(groups)}


def full_metrics(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Overall figures plus per_language, per_document and per_scenario breakdowns."""
    out = summarize(results)
    out["per_language"] = grouped(results, lambda r: r.language)
    out["per_document"] = grouped(results, lambda r: r.document)
    out["per_scenario"] = grouped(results, lambda r: r.scenario or "none")
    return out


def recall_curve(results: Sequence[QuestionResult], max_k: int = 10) -> list[float | None]:
    """Mean recall@k for k = 1..max_k (the report's recall@k plot)."""
    retrieval = [r for r in results if r.retrieval_applies]
    return [_round(_mean(recall_at_k(r.gold_refs, r.retrieved_refs or [], k) for r in retrieval)) for k in range(1, max_k + 1)]


# --- trivial baselines -----------------------------------------------------------------------

# Which trivial systems a metric is compared with. Retrieval and answer metrics: BM25 alone and dense alone
# (each "answers" by quoting its top passages, eval/systems.py) and the naive llama-index pipeline when it
# was run; scenario accuracy: the majority scenario; declining: always answer / always decline.
SEARCH_BASELINES = ("bm25", "dense", "naive-llamaindex")
BASELINES_FOR: dict[str, tuple[str, ...]] = {
    **{key: SEARCH_BASELINES for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")},
    **{key: SEARCH_BASELINES for key in ("answer_recall@5", "cited_gold_precision", "key_fact_recall_body",
                                         "key_fact_recall")},
    "scenario_accuracy": ("majority_scenario",),
    "abstention_precision": ("always_decline",),
    "abstention_recall": ("always_answer",),
    "abstention_accuracy": ("always_answer", "always_decline"),
}


def trivial_baselines(results: Sequence[QuestionResult]) -> dict[str, dict[str, Any]]:
    """The figures of the systems that need no knowledge base, on the same questions (per language too)."""

    def figures(rs: Sequence[QuestionResult]) -> dict[str, dict[str, Any]]:
        n = len(rs)
        unanswerable = sum(not r.answerable for r in rs)
        share = unanswerable / n if n else None
        gold = [r.scenario for r in rs if r.scenario is not None]
        majority = max(sorted(set(gold)), key=gold.count) if gold else None
        return {
            "always_answer": {
                "abstention_precision": None,  # it declines nothing
                "abstention_recall": 0.0 if unanswerable else None,
                "answerable_declined_rate": 0.0 if n - unanswerable else None,
                "abstention_accuracy": _round(1 - share) if share is not None else None,
            },
            "always_decline": {
                "abstention_precision": _round(share) if share is not None else None,
                "abstention_recall": 1.0 if unanswerable else None,
                "answerable_declined_rate": 1.0 if n - unanswerable else None,
                "abstention_accuracy": _round(share) if share is not None else None,
            },
            "majority_scenario": {
                "scenario": majority,
                "scenario_accuracy": _round(gold.count(majority) / len(gold)) if gold else None,
            },
        }

    out = figures(results)
    languages = sorted({r.language for r in results})
    for name in out:
        out[name]["per_language"] = {
            lang: {k: v for k, v in figures([r for r in results if r.language == lang])[name].items()}
            for lang in languages
        }
    return out


def strongest_baselines(baselines: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric, the best trivial system measured in this run: {metric: {"baseline": name, "value": v}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, names in BASELINES_FOR.items():
        best: tuple[str, float] | None = None
        for name in names:
            value = baselines.get(name, {}).get(key)
            if value is not None and (best is None or value > best[1]):
                best = (name, value)
        if best is not None:
            out[key] = {"baseline": best[0], "value": best[1]}
    return out
