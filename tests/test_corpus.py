"""The whole real corpus parsed and split (no embedding): references, counts, structure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ingest.manifest import load_manifest
from kb.passage import Passage
from kb.references import is_reference
from kb.settings import REPO_ROOT
from tests.conftest import CORPUS_MAX_CHARS


def _units(passages: list[Passage], prefix: str) -> set[str]:
    return {p.locator.split(".")[0] for p in passages if p.locator.startswith(prefix)}


def test_manifest_covers_every_corpus_folder(corpus_dir: Path) -> None:
    manifest = load_manifest(REPO_ROOT / "ingest" / "manifest.yaml")
    folders = {p.name for p in corpus_dir.iterdir() if p.is_dir()}
    used = {f.split("/")[0] for d in manifest.documents for t in d.texts for f in t.files}
    assert folders == used
    udbud = manifest.document("udbudsloven")
    assert [(t.version, t.in_force) for t in udbud.texts] == [
        ("LBK 116/2025", True), ("LBK 10/2023", False), ("L 1564/2015", False)
    ]


def test_every_reference_follows_the_grammar(corpus_passages: dict[str, list[Passage]]) -> None:
    for key, items in corpus_passages.items():
        assert items, key
        bad = [p.ref for p in items if not is_reference(p.ref)]
        assert not bad, (key, bad[:5])
        assert len({p.passage_id for p in items}) == len(items), key
        for p in items:
            assert all(is_reference(c) for c in p.cites), (p.ref, p.cites)


@pytest.mark.parametrize("language", ["en", "da"])
def test_ai_act_structure(corpus_passages: dict[str, list[Passage]], language: str) -> None:
    items = corpus_passages[f"ai-act/{language}/oj-l-12-7-2024"]
    assert len(_units(items, "art-")) == 113
    assert len(_units(items, "annex-")) == 13
    assert len(_units(items, "recital-")) == 180
    assert {p.ref for p in items if p.ref.startswith("ai-act:art-26.")} == {f"ai-act:art-26.{n}" for n in range(1, 13)}


def test_ai_act_languages_are_parallel(corpus_passages: dict[str, list[Passage]]) -> None:
    en = {p.ref for p in corpus_passages["ai-act/en/oj-l-12-7-2024"]}
    da = {p.ref for p in corpus_passages["ai-act/da/oj-l-12-7-2024"]}
    assert len(en & da) / len(en | da) > 0.98


def test_gdpr_both_languages(corpus_passages: dict[str, list[Passage]]) -> None:
    for language in ("en", "da"):
        items = corpus_passages[f"gdpr/{language}/2016-679-corr-2018"]
        assert len(_units(items, "art-")) == 99
        assert len([p for p in items if p.ref.startswith("gdpr:art-4.")]) == 26


def test_mdr_structure(corpus_passages: dict[str, list[Passage]]) -> None:
    items = corpus_passages["mdr/en/oj-l-117-5-5-2017"]
    assert len(_units(items, "art-")) == 123
    assert len(_units(items, "annex-")) == 17


def test_udbudsloven_paragraphs(corpus_passages: dict[str, list[Passage]]) -> None:
    items = corpus_passages["udbudsloven/da/lbk-116-2025"]
    numbers = {p.locator.split(".")[0] for p in items}
    expected = {f"§-{n}" for n in range(1, 200)} | {"§-5a", "§-5b", "§-134a"}
    assert numbers == expected
    assert all(not p.in_force for p in corpus_passages["udbudsloven/da/l-1564-2015"])


def test_erst_package_documents_and_clauses(corpus_passages: dict[str, list[Passage]]) -> None:
    items = corpus_passages["erst-it-rammeaftale/da/2024"]
    documents = Counter(p.locator.split(".")[0] for p in items)
    assert set(documents) == {f"section-{n}" for n in range(1, 25)}
    clauses = [p for p in items if p.locator.count(".") >= 1 and not p.locator.endswith(".0")]
    assert len({p.locator.split(".")[0] for p in clauses}) >= 20
    dpa = [p for p in items if "databehandler" in p.heading.lower()]
    assert len(dpa) > 20


def test_hleg_pages(corpus_passages: dict[str, list[Passage]]) -> None:
    items = corpus_passages["hleg-ethics-guidelines/en/8-4-2019"]
    pages = {p.page for p in items}
    assert None not in pages and min(pages) >= 1 and max(pages) <= 41 and len(pages) > 30
    assert all(p.locator == f"page-{p.page}" for p in items)


def test_splits_stay_inside_units_and_carry_headings(corpus_passages: dict[str, list[Passage]]) -> None:
    for key, items in corpus_passages.items():
        by_ref: dict[str, list[Passage]] = {}
        for p in items:
            by_ref.setdefault(p.ref, []).append(p)
        for ref, pieces in by_ref.items():
            assert len({p.heading for p in pieces}) == 1, (key, ref)
        for p in items:
            assert p.heading.strip(), (key, p.ref)
            # a piece is over the limit only when one sentence alone is
            assert len(p.text) <= CORPUS_MAX_CHARS or "\n" not in p.text, (key, p.ref, len(p.text))


def test_the_versions_of_the_ai_act_and_the_new_acts(corpus_passages: dict[str, list[Passage]]) -> None:
    """The consolidation is complete (with the original's recitals) and marks what the Digital Omnibus changed;
    the omnibus's amending points and both versions of Directive 2014/24/EU have their own references."""
    consolidated = corpus_passages["ai-act/en/consolidated-2026-07-27"]
    assert len(_units(consolidated, "art-")) == 119 and len(_units(consolidated, "annex-")) == 14
    assert len(_units(consolidated, "recital-")) == 180
    amended = {p.locator.split(".")[0] for p in consolidated if p.amended_by == "2026/1744"}
    assert len(amended) == 45 and "art-113" in amended and "art-26" not in amended
    assert all(p.valid_to is not None for p in corpus_passages["ai-act/da/oj-l-12-7-2024"])
    omnibus = {p.ref for p in corpus_passages["digital-omnibus-ai/en/oj-l-24-7-2026"]}
    assert {f"digital-omnibus-ai:art-1.{n}" for n in range(1, 44)} <= omnibus
    for key in ("procurement-directive/en/consolidated-2026-01-01", "procurement-directive/en/oj-l-94-28-3-2014"):
        assert len(_units(corpus_passages[key], "art-")) == 94, key
        assert len(_units(corpus_passages[key], "recital-")) == 138, key
