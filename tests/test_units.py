"""Ranking the law's units: the unit index, the learned ranker, and the failures issue 14 measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.question import Question
from kb.ranker import FEATURES, MODEL_FILE, RankerModelError, load_ranker
from kb.unit_index import UnitIndex, unit_kind, unit_of


@pytest.mark.parametrize(
    ("ref", "unit", "kind"),
    [
        ("ai-act:art-26.1", "ai-act:art-26", "article"),
        ("ai-act:recital-47", "ai-act:recital-47", "recital"),
        ("mdr:annex-viii.6.3", "mdr:annex-viii", "annex"),
        ("udbudsloven:§-73.2", "udbudsloven:§-73", "article"),
        ("mcc-ai-high-risk:section-0", "mcc-ai-high-risk:section-0", "front"),
        ("hleg-ethics-guidelines:page-14", "hleg-ethics-guidelines:page-14", "page"),
    ],
)
def test_unit_of_a_reference(ref: str, unit: str, kind: str) -> None:
    assert unit_of(ref) == unit
    assert unit_kind(ref) == kind


def test_every_passage_is_in_one_unit_row_and_the_index_round_trips(small_kb: KnowledgeBase, tmp_path: Path) -> None:
    units = small_kb.units
    ids = [r.passage_id for r in small_kb.keywords.rows]
    assert sorted(pid for row in units.rows for pid in row.passage_ids) == sorted(ids)
    row = next(r for r in units.rows if r.ref == "ai-act:art-26" and r.language == "en")
    vectors = small_kb.store.vectors(row.passage_ids)
    mean = np.mean(np.stack([vectors[p] for p in row.passage_ids]), axis=0)
    i = units.rows.index(row)
    assert np.allclose(units.vectors[i], mean / np.linalg.norm(mean), atol=1e-5)
    units.save(tmp_path / "units")
    again = UnitIndex.load(tmp_path / "units", units.stamp)
    assert again is not None and [r.ref for r in again.rows] == [r.ref for r in units.rows]
    assert np.array_equal(again.vectors, units.vectors)
    assert UnitIndex.load(tmp_path / "units", "another stamp") is None  # a stale index is never used
    assert again.passage_ids == units.passage_ids and np.array_equal(again.passage_vectors, units.passage_vectors)


def test_dense_search_is_exact_over_every_stored_vector(small_kb: KnowledgeBase) -> None:
    """Chroma's HNSW graph (built around a first pass's placeholder vectors) gave two builds of the same texts
    different nearest passages; the dense half is an exact search, the same in every build and mode."""
    ids = [r.passage_id for r in small_kb.keywords.rows if r.in_force]
    stored = small_kb.store.vectors(ids)
    assert len(small_kb.units.passage_ids) == small_kb.store.count() == len(small_kb.keywords.rows)
    for question, doc in [("Hvornår skal en idriftsætter foretage en konsekvensanalyse?", None), ("tilsyn og kontrol", "udbudsloven")]:
        vector = small_kb.embed_query(question)
        brute = sorted(
            ((pid, float(np.float32(stored[pid] @ vector))) for pid in ids if doc is None or pid.startswith(doc + ":")),
            key=lambda hit: (-hit[1], hit[0]),
        )[:10]
        found = small_kb.retriever._dense(question, 10, doc, None, None, True)
        assert [pid for pid, _ in found] == [pid for pid, _ in brute]
        assert np.allclose([s for _, s in found], [s for _, s in brute], atol=1e-6)


def test_the_shipped_ranker_fits_the_features_and_a_mismatch_is_named(tmp_path: Path) -> None:
    model = load_ranker(MODEL_FILE)
    assert model is not None and len(model.weights) == len(FEATURES)
    assert model.trained_on["questions"].get("calibration", 0) > 0
    stale = json.loads(MODEL_FILE.read_text()) | {"features": ["dense_top"]}
    (tmp_path / "ranker.json").write_text(json.dumps(stale))
    with pytest.raises(RankerModelError, match="ranker.json"):
        load_ranker(tmp_path / "ranker.json")


def _units(kb: KnowledgeBase, question: str, profile: list[str] | None = None) -> list[str]:
    q = Question.parse(question)
    return [u.ref for u in kb.retriever._retrieve(question, q.language, profile or [])[1]]


def test_a_danish_question_on_ending_an_innovation_partnership_reaches_its_paragraph(small_kb: KnowledgeBase) -> None:
    # issue 14: AI Act recitals filled the top five and udbudsloven § 78 was never reached
    units = _units(small_kb, "Kan vi som ordregiver afslutte et innovationspartnerskab efter en af faserne?")
    assert "udbudsloven:§-78" in units[:5], units[:5]
    assert not any(u.startswith("ai-act:recital") for u in units[:3]), units[:5]


def test_contract_front_matter_does_not_outrank_the_clauses(small_kb: KnowledgeBase) -> None:
    # issue 14: the MCC-AI introduction (section-0) outranked the clauses for audits, explanations, data rights
    for question in (
        "What does the supplier have to do when the public organisation wants to audit the AI system?",
        "Which rights does the public organisation have to the data sets used to train the AI system?",
    ):
        units = _units(small_kb, question)
        assert "mcc-ai-high-risk:section-0" not in units[:3], (question, units[:5])
        assert any(u.startswith("mcc-ai-high-risk:section-") for u in units[:5]), (question, units[:5])


@pytest.mark.parametrize(
    ("question", "act"),
    [
        ("Hvornår må et hospital behandle helbredsoplysninger om sine patienter?", "gdpr"),  # names no act
        pytest.param(
            "Hvem er ansvarlig over for patienten, hvis et defekt produkt med software forvolder skade?",
            "pld",
            # still failing (GDPR Art. 82 on compensation comes first): a Danish question rarely reaches an act that
            # exists in English only (PLD, EHDS, MDR) unless it names the act
            marks=pytest.mark.xfail(strict=True, reason="Danish question, English-only act, act not named"),
        ),
        ("Hvornår skal et projekt med kunstig intelligens anmeldes til den videnskabsetiske komité?", "komiteloven"),
    ],
)
def test_a_danish_question_that_names_no_act_reaches_the_act(small_kb: KnowledgeBase, question: str, act: str) -> None:
    units = _units(small_kb, question)
    assert any(u.startswith(act + ":") for u in units[:3]), units[:5]


def test_a_definition_question_gets_the_definition_first(small_kb: KnowledgeBase) -> None:
    assert _units(small_kb, "Hvad er en idriftsætter?")[0] == "ai-act:art-3"


def test_a_named_provision_comes_first_and_the_ranker_scores_the_rest(small_kb: KnowledgeBase) -> None:
    q = Question.parse("Hvad siger artikel 26 i AI-forordningen om logfiler?")
    _hits, ranked = small_kb.retriever._retrieve(q.text, q.language, [])
    assert ranked[0].ref == "ai-act:art-26" and ranked[0].named
    assert all(0.0 <= u.score <= 1.0 for u in ranked)
    assert [u.score for u in ranked[1:]] == sorted((u.score for u in ranked[1:]), reverse=True)


def test_a_named_provision_asked_about_what_it_does_not_hold_is_declined(small_kb: KnowledgeBase) -> None:
    # issue 14: "Hvad siger artikel 26 om løn til sygeplejersker?" was answered from Article 26 regardless
    declined = small_kb.ask("Hvad siger artikel 26 i AI-forordningen om løn til sygeplejersker?")
    assert declined.abstained and declined.see_also
    assert not small_kb.ask("Hvad siger artikel 26 i AI-forordningen?").abstained
    assert not small_kb.ask("Hvad siger artikel 26 i AI-forordningen om logfiler?").abstained


def test_negotiating_for_a_solution_on_the_market_is_answered_from_the_procurement_act(small_kb: KnowledgeBase) -> None:
    # issue 14: this was declined
    answer = small_kb.ask("Can we negotiate with suppliers when buying an AI solution that is already on the market?")
    assert not answer.abstained
    assert any(c.ref.startswith("udbudsloven:§-6") for c in answer.citations), [c.ref for c in answer.citations]


def test_a_unit_index_built_before_any_vector_ranks_by_keywords(small_kb: KnowledgeBase) -> None:
    # a build's first pass: every passage stored, none embedded yet (issue 17), and questions already come in
    passages = list(small_kb.store.iter_passages(Match(doc_id="pld")))
    units = UnitIndex.build(passages, {}, "stamp+pending")
    vector = small_kb.embed_query("defekt produkt")
    assert not units.has_vector.any() and not units.dense_scores(vector).any() and units.doc_scores(vector) == {}
    q = Question.parse("When is a product considered defective?")
    from kb.retrieval import unit_candidates

    keep = units.mask()
    refs, x = unit_candidates(q, vector, units, [], [], keep, [], set(), set())
    assert refs and x.shape[0] == len(refs)


@pytest.mark.parametrize(
    ("question", "acts"),
    [
        ("Hvad siger udbudsdirektivet om innovationspartnerskaber?", ("procurement-directive",)),
        ("Hvad siger direktiv 2014/24/EU om udbud med forhandling?", ("procurement-directive",)),
        ("What does the public procurement directive say about lots?", ("procurement-directive",)),
        ("Hvad siger udbudsloven om innovationspartnerskaber?", ("udbudsloven",)),
    ],
)
def test_a_question_can_name_the_procurement_directive(question: str, acts: tuple[str, ...]) -> None:
    """Before, no question could name Directive 2014/24/EU (the act-named features never fired for it)."""
    assert Question.parse(question, "da").acts == acts
