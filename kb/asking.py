"""Answering a question: the scenario, the evidence, the decision to answer or decline, and the composed answer.

`KnowledgeBase.ask` is the facade; this module does the job, over the knowledge base's retrieval (kb/retrieval.py),
its abstention model (kb/abstention.py) and the extractive composer (kb/answering.py) or a generator.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from kb.answer import Answer, AnswerSection, Citation, ScenarioInfo
from kb.errors import InvalidFilterError, InvalidQuestionError
from kb.question import Question
from kb.retrieval import SearchHit
from kb.scenarios import in_profile
from kb.text import check_text
from kb.timing import stage
from kb.vocabulary import LANGUAGES, SCENARIO_IDS

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

MAX_QUESTION_CHARS = 2000
NEAREST_SHOWN = 3  # provisions a declined answer points to


class Asker:
    """Answers questions from one knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def ask(
        self,
        question: str,
        scenario: str | None = None,
        language: str | None = None,
        top_k: int = 8,
        as_of: date | None = None,
    ) -> Answer:
        """A cited answer tied to a scenario, or a plain refusal with the nearest passages."""
        from kb.abstention import load_model
        from kb.answering import Composition, Evidence, compose, declined_text, paragraph_siblings
        from kb.language import detect_language

        question = check_question(question)
        language = check_language(language) or detect_language(question)
        with stage("scenario"):
            info = self.scenario_for(question, scenario, language)
        profile = self.kb.scenario_profile(info.id)
        hits, evidence_signals = self.gather_evidence(question, language, profile, top_k=top_k, as_of=as_of)
        named = [h for h in hits if h.named]
        with stage("abstention"):
            if named:  # a named provision is answered, unless the question asks it about something it does not hold
                declines = not self._named_provision_holds(Question.parse(question, language), named)
            else:
                declines = not hits or load_model(self.kb.abstention_model_path).should_decline(evidence_signals)
        if declines:
            see_also = [Citation.of(i, h.passage, h.score) for i, h in enumerate(nearest_provisions(hits), 1)]
            return Answer(
                question=question,
                answer=declined_text(language, see_also),
                language=language,
                scenario=info,
                citations=[],
                abstained=True,
                see_also=see_also,
                **self._partial(),
            )
        evidence = [
            Evidence(h.passage, h.score, rank, named=h.named, in_profile=in_profile(profile, h.passage.ref))
            for rank, h in enumerate(hits)
        ]

        def extractive() -> Composition:
            return compose(
                question, language, evidence, info.label, profile, self.kb.idf,
                siblings=paragraph_siblings(self.kb.reader.unit_passages),
                see_also_min_score=self.kb.settings.see_also_min_score,
            )

        with stage("compose"):
            if self.kb.generator is not None:
                composition, generator_name = self.kb.generator.answer(question, language, evidence, info.label, extractive)
            else:
                composition, generator_name = extractive(), "extractive"
        from kb.versions import language_notes  # law-in-force: amended provisions cited in another language

        cited = self.kb.reader.passages_by_id([c.passage_id for c in composition.citations])  # quoted siblings included
        return Answer(
            question=question,
            answer=composition.text,
            language=language,
            scenario=info,
            citations=composition.citations,
            abstained=False,
            sentences=composition.sentences,
            generator=generator_name,
            **self._partial(),
            notes=language_notes([cited[c.passage_id] for c in composition.citations if c.passage_id in cited], language),
            sections=[AnswerSection.model_validate(vars(section)) for section in composition.sections],
        )

    def _dense_scores(self, hits: list[SearchHit]) -> list[float]:
        """The evidence's dense similarities. While a build embeds, the best evidence may have no vector yet: its
        similarity is unknown, not low, so the decision sees the calibration's mean similarity for it."""
        scores = [h.dense_score for h in hits if h.dense_score is not None]
        pending = self.kb._keyword_state.get("pending")
        if pending and any(h.passage.passage_id in pending for h in hits[:3]):
            from kb.abstention import FEATURES, load_model

            scores.append(load_model(self.kb.abstention_model_path).mean[FEATURES.index("dense_top")])
        return scores

    def _partial(self) -> dict[str, Any]:
        """An answer's `partial` and `not_embedded` while a build is embedding (keyword search only for those texts)."""
        missing = sorted(set((self.kb._keyword_state.get("pending") or {}).values()))
        return {"partial": bool(missing), "not_embedded": missing}

    def _named_provision_holds(self, q: Question, named: list[SearchHit]) -> bool:
        """False when the question asks a named provision about two or more things none of its text mentions
        ("Hvad siger artikel 26 om løn til sygeplejersker?"): the provision is there, the answer is not."""
        topic = q.topic_tokens()
        if len(topic) < 2:
            return True  # "Hvad siger artikel 26?": the provision itself is the answer
        text: dict[str, list[str]] = {}
        for hit in named:
            p = hit.passage
            for sibling in self.kb.reader.unit_passages(p.locator.split(".")[0]):
                if sibling.doc_id == p.doc_id and sibling.language == p.language and sibling.version == p.version:
                    text.setdefault(p.language, []).append(sibling.indexed_text)
        if q.source_language not in text:
            return True  # only another language's text to compare the question's words with: no grounds to decline
        return q.coverage("\n".join(text[q.source_language]), q.source_language, self.kb.idf, topic) > 0

    def gather_evidence(
        self, question: str, language: str, profile: list[str], top_k: int = 8, as_of: date | None = None
    ) -> tuple[list[SearchHit], Any]:
        """The evidence for a question and the signals the decision to answer or decline looks at."""
        from kb.abstention import signals

        hits, ranked = self.kb.retriever._retrieve(question, language, profile, k=top_k, as_of=as_of)
        # the ranker's best unit, wherever the order put it (the provisions a question names come first)
        top = max(ranked, key=lambda r: r.score) if ranked else None
        with stage("abstention"):
            evidence_signals = signals(
                question,
                [(h.passage.indexed_text, h.passage.language) for h in hits[:3]],
                dense_scores=self._dense_scores(hits),
                keyword_scores=[h.keyword_score for h in hits if h.keyword_score is not None],
                idf=self.kb.idf,
                ranker_top=top.score if top else 0.0,
                unknown_words=self.kb.keywords.unknown_share(Question.parse(question, language).own_tokens),
                retrievers_agree=(top.features.get("unit_bm25_rr", 0.0) + top.features.get("unit_dense_rr", 0.0)) if top else 0.0,
            )
        return hits, evidence_signals

    def scenario_for(self, question: str, scenario: str | None, language: str) -> ScenarioInfo:
        """The scenario the user chose, or the one inferred from the question with its confidence and cues."""
        from kb.scenarios import scenario_label

        if scenario is not None:
            if scenario not in SCENARIO_IDS:
                raise InvalidFilterError("scenario", scenario, list(SCENARIO_IDS))
            reason = "valgt af brugeren" if language == "da" else "chosen by the user"
            return ScenarioInfo(id=scenario, label=scenario_label(scenario, language), confidence=1.0, inferred=False, reason=reason)
        from kb.routing import NO_SCENARIO_LABEL

        guess = self.kb.router.predict(question, language)
        return ScenarioInfo(
            id=guess.scenario,  # None: no clear scenario
            label=scenario_label(guess.scenario, language) if guess.scenario else NO_SCENARIO_LABEL.get(language, NO_SCENARIO_LABEL["en"]),
            confidence=round(float(guess.confidence), 3),
            inferred=True,
            reason=guess.reason,
        )


def nearest_provisions(hits: list[SearchHit], n: int = NEAREST_SHOWN) -> list[SearchHit]:
    """The best hit of each of the first `n` provisions (`doc:unit`: an article, a section, an annex) among `hits`.

    A declined answer points the reader at provisions to look at; the first three hits were often pieces of one unit
    (three times "ANNEX I" of the procurement directive for an off-topic question), which told one thing three times.
    """
    chosen: list[SearchHit] = []
    seen: set[str] = set()
    for hit in hits:
        unit = hit.passage.ref.split(".")[0]
        if unit not in seen:
            seen.add(unit)
            chosen.append(hit)
            if len(chosen) == n:
                break
    return chosen


def check_question(question: str) -> str:
    """The question stripped; InvalidQuestionError when it is empty or too long, UnencodableTextError when not UTF-8."""
    text = check_text((question or "").strip(), "question")
    if not text:
        raise InvalidQuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return text


def check_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise InvalidFilterError("language", language, list(LANGUAGES))
    return language
