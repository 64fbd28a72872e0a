"""The Formex consolidation parser against the real consolidations: the AI Act as amended by the Digital Omnibus
on AI, Directive 2014/24/EU consolidated 2026-01-01; and faulty copies of them, which must fail whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.parsers import get_parser
from ingest.units import ParseError, Unit

AI_CONS = "ai-act/en/consolidated-2026-07-27/CL2024R1689EN0010010.0001.xml"
OMNIBUS = {"amending_docs": {"32026R1744": "digital-omnibus-ai"}}


def _ai_original(corpus: Path) -> list[Path]:
    return sorted(corpus.glob("ai-act/en/formex/L_202401689EN.0*.fmx.xml"))


@pytest.fixture(scope="module")
def ai_units(corpus_dir: Path) -> dict[str, Unit]:
    units = list(get_parser("formex_consolidated")([corpus_dir / AI_CONS, *_ai_original(corpus_dir)], OMNIBUS))
    return {u.locator: u for u in units}


@pytest.fixture(scope="module")
def ai_original(corpus_dir: Path) -> dict[str, Unit]:
    return {u.locator: u for u in get_parser("formex")(_ai_original(corpus_dir), {})}


def _text(unit: Unit) -> str:
    return "\n".join(p.text for p in unit.paragraphs)


def test_the_consolidation_has_every_article_and_annex_and_the_originals_recitals(ai_units: dict[str, Unit]) -> None:
    articles = [loc for loc in ai_units if loc.startswith("art-")]
    assert len(articles) == 119  # 113 and the inserted 4a, 60a, 75a–75d
    assert {"art-4a", "art-60a", "art-75a", "art-75d"} <= set(articles)
    assert [loc for loc in ai_units if loc.startswith("annex-")][-1] == "annex-xiv"  # inserted
    assert sum(loc.startswith("recital-") for loc in ai_units) == 180


def test_article_113_carries_the_wording_in_force_and_the_amending_point(
    ai_units: dict[str, Unit], ai_original: dict[str, Unit]
) -> None:
    new, old = ai_units["art-113"], ai_original["art-113"]
    assert new.amended_by == "2026/1744"
    assert new.amending_refs == ["digital-omnibus-ai:art-1.40"]
    assert "2 December 2027 as regards AI systems classified as high-risk pursuant to Article 6(2) and Annex III" in _text(new)
    assert "2 December 2027" not in _text(old) and "(c) Article 6(1) and the corresponding obligations" in _text(old)


def test_a_provision_the_omnibus_did_not_touch_is_unmarked_and_word_for_word_the_original(
    ai_units: dict[str, Unit], ai_original: dict[str, Unit]
) -> None:
    assert ai_units["art-26"].amended_by is None and ai_units["art-26"].amending_refs == []
    assert _text(ai_units["art-26"]) == _text(ai_original["art-26"])
    unmarked = [loc for loc, u in ai_units.items() if not u.amended_by and loc in ai_original]
    assert all(_text(ai_units[loc]) == _text(ai_original[loc]) for loc in unmarked)
    assert sum(1 for u in ai_units.values() if u.amended_by) == 45  # 42 articles, annexes I, VIII, XIV


def test_deleted_wording_is_dropped(ai_units: dict[str, Unit], ai_original: dict[str, Unit]) -> None:
    # Art. 1(9)(b) of the omnibus deletes Article 10(5); Art. 1(42) deletes points 7 and 9 of Annex VIII, Section B
    assert "5" in {p.number for p in ai_original["art-10"].paragraphs}
    assert "5" not in {p.number for p in ai_units["art-10"].paragraphs}
    assert "grounds on which the AI system is considered to be not-high-risk" in _text(ai_original["annex-viii"])
    assert "grounds on which the AI system is considered to be not-high-risk" not in _text(ai_units["annex-viii"])


def test_the_amended_articles_agree_with_the_eurlex_html_markers(corpus_dir: Path, ai_units: dict[str, Unit]) -> None:
    """The EUR-Lex HTML of the same consolidation marks amended wording ▼M1 (a link to CELEX 32026R1744)."""
    html = (corpus_dir / "ai-act/en/consolidated-2026-07-27/eurlex.html").read_text(encoding="utf-8")
    starts = [(m.start(), m[1]) for m in re.finditer(r'<div class="eli-subdivision" id="art_(\d+[a-z]?)"', html)]
    marked = set()
    for i, (pos, number) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else html.find('id="anx_', pos)
        if "32026R1744" in html[pos:end] or "32026R1744" in html[max(0, pos - 600) : pos]:
            marked.add(f"art-{number}")
    parsed = {loc for loc, u in ai_units.items() if loc.startswith("art-") and u.amended_by}
    assert marked <= parsed
    # the HTML marks Articles 75a–75d once, before 75a: one insertion (Art. 1(32) of the omnibus)
    assert parsed - marked == {"art-75b", "art-75c", "art-75d"}
    assert {tuple(ai_units[loc].amending_refs) for loc in ("art-75a", "art-75b", "art-75d")} == {("digital-omnibus-ai:art-1.32",)}


def test_the_directive_consolidation_takes_its_recitals_from_the_original_html(corpus_dir: Path) -> None:
    files = [
        corpus_dir / "procurement-directive/en/consolidated-2026-01-01/CL2014L0024EN0060010.0001.xml",
        corpus_dir / "procurement-directive/en/oj-2014-03-28/eurlex.html",
    ]
    units = {u.locator: u for u in get_parser("formex_consolidated")(files, {})}
    assert sum(loc.startswith("recital-") for loc in units) == 138
    assert sum(loc.startswith("art-") for loc in units) == 94
    assert sum(loc.startswith("annex-") for loc in units) == 15
    assert units["art-4"].amended_by == "2025/2152"  # the thresholds, changed by Delegated Regulation (EU) 2025/2152
    assert units["art-31"].amended_by is None and "innovation partnership" in _text(units["art-31"])


def test_the_ehds_json_and_html_give_the_same_annexes(corpus_dir: Path) -> None:
    """The manifest keeps articles.json for the EHDS (it yields the four annexes too); the HTML checks it."""
    from_json = {u.locator: u for u in get_parser("article_json")([corpus_dir / "ehds/en/articles.json"], {})}
    from_html = {u.locator: u for u in get_parser("eurlex_html")([corpus_dir / "ehds/en/eurlex.html"], {})}
    annexes = ["annex-i", "annex-ii", "annex-iii", "annex-iv"]
    assert [loc for loc in from_json if loc.startswith("annex-")] == annexes
    assert [loc for loc in from_html if loc.startswith("annex-")] == annexes
    words = lambda u: set(re.findall(r"\w+", _text(u).lower()))  # noqa: E731 - the tables are laid out differently
    for loc in annexes:
        overlap = len(words(from_json[loc]) & words(from_html[loc])) / len(words(from_html[loc]))
        assert overlap > 0.95, loc
    assert {loc for loc in from_json if loc.startswith("art-")} == {loc for loc in from_html if loc.startswith("art-")}


# --- faulty consolidations: reported with the file and the provision, nothing given back -----------------------


def _broken(tmp_path: Path, corpus_dir: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    text = (corpus_dir / AI_CONS).read_text(encoding="utf-8")
    broken = edit(text)
    assert broken != text
    path = tmp_path / "CL2024R1689EN-broken.xml"
    path.write_text(broken, encoding="utf-8")
    return path


def _fails(path: Path, corpus_dir: Path) -> ParseError:
    units = get_parser("formex_consolidated")([path, *_ai_original(corpus_dir)], OMNIBUS)
    with pytest.raises(ParseError) as caught:
        next(iter(units))  # not one unit before the fault is found
    assert str(path) in str(caught.value)
    return caught.value


def _first_marker_in_article_113(text: str) -> str:
    start = text.index("<TI.ART>Article 113")
    return re.compile(r'<\?CLG\.MDFO ID="O(\w+)"').search(text, start)[1]


def test_a_marker_that_never_closes(tmp_path: Path, corpus_dir: Path) -> None:
    def unclose(text: str) -> str:
        return re.sub(rf'<\?CLG\.MDFC ID="C{_first_marker_in_article_113(text)}"[^>]*\?>', "", text, count=1)

    path = _broken(tmp_path, corpus_dir, unclose)
    error = _fails(path, corpus_dir)
    assert "opens and never closes" in str(error) and "Article 113" in str(error)


def test_a_marker_that_closes_without_opening(tmp_path: Path, corpus_dir: Path) -> None:
    def unopen(text: str) -> str:
        return re.sub(rf'<\?CLG\.MDFO ID="O{_first_marker_in_article_113(text)}"[^>]*\?>', "", text, count=1)

    path = _broken(tmp_path, corpus_dir, unopen)
    assert "closes but never opened" in str(_fails(path, corpus_dir))


def test_an_article_in_the_original_only(tmp_path: Path, corpus_dir: Path) -> None:
    def drop_article_26(text: str) -> str:
        start = text.index("<ARTICLE IDENTIFIER=\"026\"")
        return text[:start] + text[text.index("</ARTICLE>", start) + len("</ARTICLE>") :]

    error = _fails(_broken(tmp_path, corpus_dir, drop_article_26), corpus_dir)
    assert "art-26 is in the original" in str(error)


def test_a_changed_wording_without_a_marker(tmp_path: Path, corpus_dir: Path) -> None:
    path = _broken(tmp_path, corpus_dir, lambda t: t.replace("Obligations of deployers of high-risk AI systems", "Duties of deployers", 1))
    assert "art-26 differs from the original but no marker says it was amended" in str(_fails(path, corpus_dir))


def test_not_a_consolidation(corpus_dir: Path) -> None:
    with pytest.raises(ParseError, match="not a Formex consolidation"):
        list(get_parser("formex_consolidated")(_ai_original(corpus_dir)[:1], {}))
