"""The systems the evaluation compares on the same questions: ours and the baselines a team would otherwise build.

- ours: `kb.ask` with the question's scenario when the dataset gives one (the
  inferred scenario otherwise). Retrieval metrics score the reference ranking of
  `kb.retrieve` (the evidence `ask` composes from: hybrid search, named provisions
  first, the scenario's provisions boosted); answer metrics score the `ask` answer
  (its citations in citation-number order, its body: `answer_body_of`);
  scenario accuracy asks the router WITHOUT the scenario (`kb.scenario_for(q, None)`,
  what `ask` does when the user chooses none; no clear scenario is the guess "none");
  latency is the `ask` call.
- ours-routed: the same, but never told the gold scenario: retrieval uses the
  routed scenario's profile and `ask` gets no scenario, as for a user who picks
  none in the widget. The gold scenario's profile steers `ours` towards the gold
  provisions (it holds about a third of the former dev set's gold references), so
  the gap between the two is what that help is worth.
- hybrid-no-scenario: `kb.retrieve` with an empty scenario profile (no steering).
- bm25: `kb.search(mode="keyword")`, BM25 alone (no named-provision shortcut).
- dense: `kb.search(mode="dense")`, the embedding alone (no named-provision shortcut).
  Both also "answer" the trivial way a search engine does: the top QUOTED_PASSAGES
  distinct passages quoted whole, cited [1], [2], [3] in rank order. That is the
  baseline the answer metrics (answer recall@5, cited-gold precision, key facts in
  the body) must beat: an answer that holds less than the top search hits is no
  better than the search. They never decline.
- naive-llamaindex: eval.naive (SentenceSplitter chunks, VectorStoreIndex on
  Chroma, the same embedding model); its answer is the first sentence of each of
  the top 3 chunks, cited to them. It builds its own embedded index of the whole
  knowledge base (expensive on the full corpus: about as long as an ingest).

Retrieval-only systems get retrieval metrics and latency (of the retrieval call).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eval.dataset import EvalQuestion
from eval.metrics import CitedSentence, QuestionResult, answer_body, citation_scores, faithfulness
from eval.naive import NaiveIndex, first_sentence
from kb.knowledge_base import KnowledgeBase
from kb.scenarios import profile_refs

SYSTEMS = ("ours", "ours-routed", "hybrid-no-scenario", "bm25", "dense", "naive-llamaindex")
BASELINE_SYSTEMS = ("bm25", "dense", "naive-llamaindex")  # the trivial systems every figure is printed beside
RANK_DEPTH = 10  # distinct references scored (recall@10, MRR@10, nDCG@10)
QUOTED_PASSAGES = 3  # the search baselines' "answer": their top passages quoted whole


def _base(q: EvalQuestion) -> QuestionResult:
    return QuestionResult(
        id=q.id,
        question=q.question,
        language=q.language,
        scenario=q.scenario,
        answerable=q.answerable,
        gold_refs=list(q.gold_refs),
        key_facts=list(q.key_facts),
    )


def _template_line(text: str) -> bool:
    """Lines the answerer writes from a template (the scenario's provision list), not claims from a passage."""
    from kb.answering import TEXTS

    for texts in TEXTS.values():
        prefix = texts["provisions"].split("{label}")[0]
        if prefix and text.startswith(prefix):
            return True
    return False


def answer_body_of(answer_text: str) -> str:
    """Our answer's body (eval.metrics.answer_body) with the answerer's own templates and list headings."""
    from kb.answering import TEXTS

    headings, templates = [], []
    for texts in TEXTS.values():
        for key, value in texts.items():
            if isinstance(value, str):
                (headings if key.startswith(("sources", "see_also")) else templates).append(value)
    return answer_body(answer_text, templates, headings)


class System:
    """One system under evaluation: `run(question)` gives its QuestionResult."""

    name = ""
    answers = False

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def prepare(self, log: Callable[[str], None] | None = None) -> None:
        """Anything to build before the first question (the naive index)."""

    def run(self, q: EvalQuestion) -> QuestionResult:
        result = _base(q)
        try:
            self._run(q, result)
        except Exception as exc:  # one question failing must not end the run: it is reported
            result.error = f"{type(exc).__name__}: {exc}"
        return result

    def _run(self, q: EvalQuestion, result: QuestionResult) -> None:
        raise NotImplementedError


class Ours(System):
    name = "ours"
    answers = True
    told_scenario = True  # the dataset's gold scenario is given to retrieval and ask

    def _run(self, q: EvalQuestion, result: QuestionResult) -> None:
        kb = self.kb
        routed = kb.scenario_for(q.question, None, q.language)
        # "none": the router found no clear scenario (id None), scored as a guess (wrong when the gold has one)
        result.predicted_scenario = routed.id or "none"
        given = q.scenario if self.told_scenario else None
        scenario = given or routed.id
        hits = kb.retrieve(q.question, q.language, profile_refs(scenario) if scenario else [], k=RANK_DEPTH)
        result.retrieved_refs = [h.passage.ref for h in hits]
        started = time.perf_counter()
        answer = kb.ask(q.question, scenario=given, language=q.language)
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.answer_text = answer.answer
        result.answer_body = answer_body_of(answer.answer)
        result.abstained = answer.abstained
        result.cited_refs = [c.ref for c in sorted(answer.citations, key=lambda c: c.n)]
        if not answer.abstained:
            by_n = {c.n: c.text for c in answer.citations}
            sentences = [CitedSentence(s.text, [by_n[n] for n in s.citations if n in by_n]) for s in answer.sentences]
            result.citation_precision, result.citation_recall = citation_scores(sentences)
            result.faithfulness = faithfulness(answer.answer, by_n, skip=_template_line)


class OursRouted(Ours):
    name = "ours-routed"
    told_scenario = False


class HybridNoScenario(System):
    name = "hybrid-no-scenario"

    def _run(self, q: EvalQuestion, result: QuestionResult) -> None:
        started = time.perf_counter()
        hits = self.kb.retrieve(q.question, q.language, [], k=RANK_DEPTH)
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.retrieved_refs = [h.passage.ref for h in hits]


class SearchMode(System):
    mode = ""
    answers = True  # the trivial answer: its top passages quoted whole

    def _run(self, q: EvalQuestion, result: QuestionResult) -> None:
        started = time.perf_counter()
        # passages, not references: ask deep enough that RANK_DEPTH distinct references remain
        hits = self.kb.search(q.question, k=4 * RANK_DEPTH, mode=self.mode, named=False, within=self.within())
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.retrieved_refs = [h.passage.ref for h in hits]
        quoted, seen = [], set()
        for h in hits:
            if h.passage.ref not in seen:
                seen.add(h.passage.ref)
                quoted.append(h.passage)
            if len(quoted) == QUOTED_PASSAGES:
                break
        result.answer_text = "\n\n".join(f"{p.text} [{n}]" for n, p in enumerate(quoted, 1))
        result.answer_body = answer_body(result.answer_text)
        result.cited_refs = [p.ref for p in quoted]


class BM25(SearchMode):
    name = "bm25"
    mode = "keyword"


    def within(self) -> list[str] | None:
        return None


class Dense(SearchMode):
    name = "dense"
    mode = "dense"

    def within(self) -> list[str] | None:
        """Every document: the exact search over all stored vectors (kb's within-profile path) rather than Chroma's
        approximate HNSW index, whose results move between two builds of the same texts. A baseline the gate's
        floors must stay above has to be the same in every run."""
        return sorted(self.kb.catalog["documents"])


class NaiveLlamaIndex(System):
    name = "naive-llamaindex"
    answers = True
    answer_chunks = 3

    def __init__(self, kb: KnowledgeBase) -> None:
        super().__init__(kb)
        self.naive = NaiveIndex(kb)

    def prepare(self, log: Callable[[str], None] | None = None) -> None:
        self.naive.index(progress=log)

    def _run(self, q: EvalQuestion, result: QuestionResult) -> None:
        started = time.perf_counter()
        hits = self.naive.retrieve(q.question, k=RANK_DEPTH)
        lines, sentences, by_n = [], [], {}
        for n, hit in enumerate(hits[: self.answer_chunks], 1):
            sentence = first_sentence(hit.text)
            by_n[n] = hit.text
            sentences.append(CitedSentence(sentence, [hit.text]))
            lines.append(f"{sentence} [{n}]")
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.retrieved_refs = [ref for hit in hits for ref in hit.refs]
        result.answer_text = "\n".join(lines)
        result.answer_body = answer_body(result.answer_text)
        result.cited_refs = [hit.ref for hit in hits[: self.answer_chunks]]
        result.citation_precision, result.citation_recall = citation_scores(sentences)
        result.faithfulness = faithfulness(result.answer_text, by_n)


_CLASSES: dict[str, type[System]] = {
    cls.name: cls for cls in (Ours, OursRouted, HybridNoScenario, BM25, Dense, NaiveLlamaIndex)
}


def make_system(name: str, kb: KnowledgeBase) -> System:
    """A system by name; ValueError lists the known names."""
    if name not in _CLASSES:
        raise ValueError(f"unknown system {name!r}; expected one of {', '.join(SYSTEMS)}")
    return _CLASSES[name](kb)


def describe() -> dict[str, Any]:
    return {name: (_CLASSES[name].__doc__ or "").strip() for name in SYSTEMS}
