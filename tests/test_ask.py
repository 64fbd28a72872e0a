"""Answers from the knowledge base, in process: grounded sentences, scenarios, named provisions, refusals, versions."""

from __future__ import annotations

from datetime import date

import pytest

from kb.errors import InvalidFilterError, InvalidQuestionError
from kb.knowledge_base import KnowledgeBase
from kb.references import covers

pytestmark = pytest.mark.slow


def _assert_grounded(answer) -> None:  # type: ignore[no-untyped-def]
    """Every sentence is a sentence of the passage it cites (up to the ' …' a long one is cut with)."""
    by_n = {c.n: c for c in answer.citations}
    assert answer.sentences
    for sentence in answer.sentences:
        assert sentence.citations, sentence.text
        cited = " ".join(" ".join(by_n[n].text.split()) for n in sentence.citations)
        text = " ".join(sentence.text.removesuffix(" …").split())
        assert text in cited, (sentence.text, [by_n[n].ref for n in sentence.citations])
        assert f"[{sentence.citations[0]}]" in answer.answer


def test_answer_with_chosen_scenario_is_grounded(small_kb: KnowledgeBase) -> None:
    answer = small_kb.ask("Hvilke pligter har en idriftsætter af et højrisiko-AI-system?", scenario="loesning")
    assert not answer.abstained
    assert answer.language == "da"
    assert answer.scenario.id == "loesning" and not answer.scenario.inferred and answer.scenario.confidence == 1.0
    assert answer.scenario.label == "LØSNING"
    assert any(covers("ai-act:art-26", c.ref) for c in answer.citations)
    assert all(c.language == "da" for c in answer.citations if c.doc_id == "ai-act")
    _assert_grounded(answer)
    assert "I scenariet LØSNING" in answer.answer and "Kilder:" in answer.answer


def test_inferred_scenario_names_its_cues(small_kb: KnowledgeBase) -> None:
    answer = small_kb.ask("Vi har bygget en prototype i et OPI-samarbejde med en klinisk afdeling. Hvad skal vi være opmærksomme på?")
    assert answer.scenario.inferred and answer.scenario.id == "prototype"
    assert 0 < answer.scenario.confidence <= 1
    assert "prototype" in answer.scenario.reason.lower() or "opi" in answer.scenario.reason.lower()


def test_named_provision_comes_first(small_kb: KnowledgeBase) -> None:
    answer = small_kb.ask("Hvad står der i artikel 26 i AI-forordningen om logfiler?")
    assert not answer.abstained
    assert covers("ai-act:art-26", answer.citations[0].ref)
    hits = small_kb.search("What does Article 50 require?", k=3)
    assert covers("ai-act:art-50", hits[0].passage.ref)
    assert small_kb.search("§ 5 a i udbudsloven", k=1)[0].passage.ref.startswith("udbudsloven:§-5a")
    rule = small_kb.search("How does Annex VIII rule 11 classify software?", k=1)[0].passage
    assert rule.ref == "mdr:annex-viii.6.3" and rule.text.lstrip().startswith("Rule 11")


def test_danish_question_quotes_english_only_text(small_kb: KnowledgeBase) -> None:
    answer = small_kb.ask("Hvordan klassificeres software efter bilag VIII regel 11 i MDR?")
    assert not answer.abstained
    assert answer.citations[0].doc_id == "mdr" and answer.citations[0].language == "en"
    assert "engelske tekst" in answer.answer
    _assert_grounded(answer)


@pytest.mark.parametrize(
    ("question", "language", "word"),
    [
        pytest.param(
            "Hvordan laver man en god lasagne?", "da", "kan ikke finde",
            marks=pytest.mark.xfail(
                strict=False,
                reason="on the 1,711-passage subset 'lave' and 'god' are rare words (IDF 5.8 and 6.8 of 7.4), so the "
                "question looks specific to the ERST guidance; the model calibrated on the subset's 64 questions puts "
                "it at 0.42 against a threshold of 0.40. The full corpus, with the shipped model, declines it",
            ),
        ),
        ("Hvordan skifter jeg et dæk på min cykel?", "da", "kan ikke finde"),
        ("Who won the football world cup in 2018?", "en", "cannot find"),
    ],
)
def test_off_topic_questions_are_declined(small_kb: KnowledgeBase, question: str, language: str, word: str) -> None:
    answer = small_kb.ask(question)
    assert answer.abstained and answer.language == language
    assert word in answer.answer
    assert answer.citations == [] and answer.see_also
    units = [c.ref.split(".")[0] for c in answer.see_also]
    assert len(units) == len(set(units)), units  # one nearest passage per provision


def test_a_declined_answer_points_at_distinct_provisions(small_kb: KnowledgeBase) -> None:
    """Pieces and paragraphs of one unit come up together in the hits; the reader is shown each provision once."""
    from kb.asking import nearest_provisions
    from kb.retrieval import SearchHit

    def hits(*refs: str) -> list[SearchHit]:
        return [SearchHit(passage=small_kb.passages_for_ref(ref, "en")[0], score=1.0) for ref in refs]

    found = hits("ai-act:art-26.1", "ai-act:art-26.2", "ai-act:art-6.1", "ai-act:art-26.3", "gdpr:art-28.1", "nis2:art-21.1")
    assert [h.passage.ref for h in nearest_provisions(found)] == ["ai-act:art-26.1", "ai-act:art-6.1", "gdpr:art-28.1"]
    assert [h.passage.ref for h in nearest_provisions(found[:3], 5)] == ["ai-act:art-26.1", "ai-act:art-6.1"]


def test_versions_in_force_unless_as_of(small_kb: KnowledgeBase) -> None:
    now = small_kb.ask("Hvad er lovens formål efter udbudsloven § 1?")
    assert {c.version for c in now.citations if c.doc_id == "udbudsloven"} == {"LBK 116/2025"}
    then = small_kb.ask("Hvad er lovens formål efter udbudsloven § 1?", as_of=date(2019, 6, 1))
    assert {c.version for c in then.citations if c.doc_id == "udbudsloven"} == {"L 1564/2015"}


def test_bad_input(small_kb: KnowledgeBase) -> None:
    with pytest.raises(InvalidQuestionError, match="empty"):
        small_kb.ask("   ")
    with pytest.raises(InvalidQuestionError, match="2000"):
        small_kb.ask("x" * 2001)
    with pytest.raises(InvalidFilterError, match="behov, prototype, demo, loesning"):
        small_kb.ask("Hvad er et AI-system?", scenario="drift")
    with pytest.raises(InvalidFilterError, match="language"):
        small_kb.ask("Hvad er et AI-system?", language="de")
