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

Per answered question (ALCE, Gao et al. 2023), with support decided by
`eval.support.supports` (calibrated lexical entailment, see that module):

- citation recall: share of the answer's sentences whose cited passages, taken
  together, support the sentence (a sentence with no citation is not supported).
- citation precision: share of the answer's citations (sentence, citation pairs)
  that are relevant: the cited passage alone supports the sentence, or the
  sentence is supported by all its citations together but no longer without this
  one (the citation is needed).
- faithfulness: share of the claims of the answer *as shown* (the `answer` text,
  each line or sentence carrying [n] marks; template lines such as the sources
  list are skipped) that are supported by the passages their [n] marks point to.
  It checks what the user reads, not the answerer's bookkeeping: a claim that
  loses or misnumbers its citation while being rendered fails here.
- cited-gold precision (extra): share of the answer's cited references that hit
  a gold reference (answerable questions).

Per question, other:

- key-fact recall: share of the question's key facts that occur in the answer
  text, case-insensitive, whitespace-normalised; a declined answer scores 0. A
  Danish question on an English-only text has English key facts, found in the
  English passage the answer quotes.
- scenario accuracy: over questions with a gold scenario, the share whose
  scenario the system infers (asked WITHOUT the scenario) equals the gold one.
- abstention precision: of the questions the system declined, the share that are
  unanswerable; abstention recall: of the unanswerable questions, the share it
  declined; answerable declined rate (extra): of the answerable, the share declined.
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


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


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
    cited_refs: list[str] = field(default_factory=list)
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

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["document"] = self.document
        for k in K_VALUES:
            out[f"recall@{k}"] = self.recall(k)
        out["key_fact_recall"] = self.key_fact_recall()
        return out


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


METRIC_KEYS = (
    "n", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "citation_precision", "citation_recall",
    "faithfulness", "cited_gold_precision", "key_fact_recall", "scenario_accuracy", "abstention_precision",
    "abstention_recall", "answerable_declined_rate", "latency_ms_p50", "latency_ms_p95",
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
    out["citation_precision"] = _mean(r.citation_precision for r in answered)
    out["citation_recall"] = _mean(r.citation_recall for r in answered)
    out["faithfulness"] = _mean(r.faithfulness for r in answered)
    out["cited_gold_precision"] = _mean(
        cited_gold_precision(r.gold_refs, r.cited_refs) for r in answered if r.answerable and r.gold_refs
    )
    out["key_fact_recall"] = _mean(r.key_fact_recall() for r in results)
    routed = [r for r in results if r.scenario is not None and r.predicted_scenario is not None]
    out["scenario_accuracy"] = _mean(float(r.predicted_scenario == r.scenario) for r in routed)
    can_decline = [r for r in results if r.abstained is not None]
    declined = [r for r in can_decline if r.abstained]
    unanswerable = [r for r in can_decline if not r.answerable]
    answerable = [r for r in can_decline if r.answerable]
    out["abstention_precision"] = sum(not r.answerable for r in declined) / len(declined) if declined else None
    out["abstention_recall"] = sum(bool(r.abstained) for r in unanswerable) / len(unanswerable) if unanswerable else None
    out["answerable_declined_rate"] = sum(bool(r.abstained) for r in answerable) / len(answerable) if answerable else None
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
