"""Hybrid search over a knowledge base built from the real corpus subset."""

from __future__ import annotations

import pytest

from kb.errors import InvalidFilterError, UnknownPassageError
from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.references import covers

pytestmark = pytest.mark.slow


def _refs(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.passage.ref for h in hits]


@pytest.mark.parametrize(
    "query",
    ["obligations of deployers of high-risk AI systems", "idriftsætteres forpligtelser ved højrisiko-AI-systemer"],
)
def test_deployer_obligations_in_top_three(small_kb: KnowledgeBase, query: str) -> None:
    refs = _refs(small_kb.search(query, k=3))
    assert any(covers("ai-act:art-26", r) for r in refs), refs


def test_innovation_partnership_in_udbudsloven(small_kb: KnowledgeBase) -> None:
    hits = small_kb.search("innovationspartnerskab", doc="udbudsloven", k=5)
    assert hits[0].passage.ref.split(".")[0] in {"udbudsloven:§-73", "udbudsloven:§-74", "udbudsloven:§-75", "udbudsloven:§-76"}
    assert "innovationspartnerskab" in hits[0].passage.text.lower()
    assert all(h.passage.doc_id == "udbudsloven" and h.passage.in_force for h in hits)
    assert all(h.passage.version == "LBK 116/2025" for h in hits), "only the version in force"


def test_filters(small_kb: KnowledgeBase) -> None:
    assert {h.passage.language for h in small_kb.search("personal data", language="en", k=10)} == {"en"}
    assert {h.passage.kind for h in small_kb.search("databehandler", kind="contract", k=10)} == {"contract"}
    with pytest.raises(InvalidFilterError, match="valid: .*udbudsloven"):
        small_kb.search("x", doc="no-such-doc")
    with pytest.raises(InvalidFilterError, match="kind"):
        small_kb.search("x", kind="novel")


def test_old_versions_only_when_asked(small_kb: KnowledgeBase) -> None:
    hits = small_kb.search("udbudsloven anvendelsesområde", doc="udbudsloven", k=30, in_force_only=False)
    assert {h.passage.version for h in hits} >= {"LBK 116/2025", "LBK 10/2023"}


def test_parallel_versions_and_neighbours(small_kb: KnowledgeBase) -> None:
    english = [p for p in small_kb.passages_for_ref("ai-act:art-26", language="en") if p.piece == 1]
    danish = [p for p in small_kb.passages_for_ref("ai-act:art-26", language="da") if p.piece == 1]
    assert [p.ref for p in english] == [p.ref for p in danish] == [f"ai-act:art-26.{n}" for n in range(1, 13)]
    first = english[0]
    parallel = small_kb.parallel_versions(first)
    assert [p.language for p in parallel] == ["da"] and parallel[0].ref == first.ref
    assert parallel[0].heading.startswith("Artikel 26")
    neighbours = small_kb.neighbours(english[1])
    assert [p.ref for p in neighbours] == ["ai-act:art-26.1", "ai-act:art-26.3"]
    with pytest.raises(UnknownPassageError):
        small_kb.passage("ai-act:art-999/en/x")


def test_passages_carry_provenance(small_kb: KnowledgeBase) -> None:
    passage = small_kb.passages_for_ref("ai-act:art-26.1", language="en")[0]
    assert passage.heading == "Article 26 – Obligations of deployers of high-risk AI systems"
    assert passage.kind == "regulation" and passage.jurisdiction == "EU" and passage.in_force
    # the English text in force is the consolidation of 27.7.2026 (CELEX 02024R1689-20260727)
    assert passage.version == "consolidated 2026-07-27" and passage.url and "02024R1689-20260727" in passage.url
    cites = small_kb.passages_for_ref("ai-act:art-26", language="en")
    assert any("ai-act:art-72" in p.cites or "ai-act:art-73" in p.cites for p in cites)
    pages = [p.page for p in small_kb.store.find(Match(doc_id="hleg-ethics-guidelines"))]
    assert pages and all(isinstance(n, int) and 10 <= n <= 15 for n in pages)


def test_definitions_are_one_passage_each(small_kb: KnowledgeBase) -> None:
    definitions = small_kb.passages_for_ref("ai-act:art-3", language="en")  # in force: the consolidation
    numbered = [p for p in definitions if p.ref != "ai-act:art-3"]
    assert len(numbered) == 70  # the 2024 text's 68 and the two the Digital Omnibus added
    original = small_kb.passages_for_ref("ai-act:art-3", language="en", in_force_only=False)
    assert len([p for p in original if p.version == "OJ L, 12.7.2024" and p.ref != "ai-act:art-3"]) == 68
    deployer = next(p for p in numbered if p.ref == "ai-act:art-3.4")
    assert "deployer" in deployer.text and "means" in deployer.text
    hits = small_kb.search("what is a deployer", k=5)
    assert "ai-act:art-3.4" in _refs(hits)


def test_danish_question_finds_english_only_text(small_kb: KnowledgeBase) -> None:
    # the MDR is in English only; rule 11 (software for diagnostic or therapeutic decisions) is found from a Danish
    # paraphrase through the lexicon learnt from parallel texts (rank 3 here; dense alone misses it). A bare
    # "klassificeringsregler for software" query sat at rank 6-20+ depending on Chroma's non-deterministic HNSW
    # build: how well cross-language retrieval ranks in general is the evaluation's job (per document).
    question = "software der leverer information til diagnostiske eller terapeutiske beslutninger klassificeres i klasse IIa"
    refs = _refs(small_kb.search(question, k=10))
    assert any(r.startswith("mdr:annex-viii") for r in refs), refs
