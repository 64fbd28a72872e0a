"""The article_markdown parser on the real MDR and IVDR exports, and on broken copies."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from ingest.parsers.article_markdown import parse, roman_to_int
from ingest.units import ParseError, Unit
from kb.references import is_locator
from tests.ingest.refusals import refused

PATTERNS = ["{act}/en/recitals.md", "{act}/en/article-*.md", "{act}/en/annex-*.md"]
ROMANS = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii", "xiv", "xv", "xvi", "xvii"]


def _files(corpus_dir: Path, act: str) -> list[Path]:
    """The files as the manifest lists them: each glob expanded and sorted, patterns in order."""
    files: list[Path] = []
    for pattern in PATTERNS:
        files += sorted(corpus_dir.glob(pattern.format(act=act)))
    return files


@pytest.fixture(scope="module")
def mdr(corpus_dir: Path) -> list[Unit]:
    return list(parse(_files(corpus_dir, "mdr"), {}))


@pytest.fixture(scope="module")
def ivdr(corpus_dir: Path) -> list[Unit]:
    return list(parse(_files(corpus_dir, "ivdr"), {}))


def _by_locator(units: list[Unit]) -> dict[str, Unit]:
    return {u.locator: u for u in units}


def _numbers(unit: Unit) -> list[str]:
    return [p.number for p in unit.paragraphs if p.number is not None]


@pytest.mark.parametrize(
    ("act", "recitals", "articles", "annexes"),
    [("mdr", 101, 123, 17), ("ivdr", 101, 113, 15)],
)
def test_counts_and_document_order(corpus_dir: Path, act: str, recitals: int, articles: int, annexes: int) -> None:
    units = list(parse(_files(corpus_dir, act), {}))
    locators = [u.locator for u in units]
    expected = (
        [f"recital-{n}" for n in range(1, recitals + 1)]
        + [f"art-{n}" for n in range(1, articles + 1)]
        + [f"annex-{r}" for r in ROMANS[:annexes]]
    )
    assert locators == expected


def test_files_in_any_order_give_the_same_units(corpus_dir: Path, mdr: list[Unit]) -> None:
    files = list(reversed(_files(corpus_dir, "mdr")))
    assert [u.locator for u in parse(files, {})] == [u.locator for u in mdr]


def test_roman_order() -> None:
    assert sorted(["IX", "V", "XVII", "IV", "I"], key=roman_to_int) == ["I", "IV", "V", "IX", "XVII"]


def test_mdr_definitions(mdr: list[Unit]) -> None:
    art2 = _by_locator(mdr)["art-2"]
    assert art2.heading == "Article 2 – Definitions"
    assert art2.definitions is True
    assert art2.paragraphs[0].number is None
    assert art2.paragraphs[0].text == "For the purposes of this Regulation, the following definitions apply:"
    assert _numbers(art2) == [str(n) for n in range(1, 72)]
    defs = {p.number: p.text for p in art2.paragraphs if p.number}
    assert defs["1"].startswith("‘medical device’ means any instrument, apparatus, appliance, software")
    # the indents and the closing sentence of definition 1 stay inside it
    assert "\n— diagnosis, prevention, monitoring, prediction, prognosis" in defs["1"]
    assert "devices for the control or support of conception" in defs["1"]
    assert defs["71"].startswith("‘common specifications’ (CS) means")
    assert not _by_locator(mdr)["art-3"].definitions


def test_ivdr_definitions(ivdr: list[Unit]) -> None:
    art2 = _by_locator(ivdr)["art-2"]
    assert art2.definitions is True
    assert _numbers(art2) == [str(n) for n in range(1, 75)]
    assert art2.paragraphs[1].text.startswith("‘medical device’ means ‘medical device’ as defined in point (1)")


def test_mdr_article_10_paragraphs(mdr: list[Unit]) -> None:
    art10 = _by_locator(mdr)["art-10"]
    assert art10.heading == "Article 10 – General obligations of manufacturers"
    assert _numbers(art10) == [str(n) for n in range(1, 17)]
    texts = {p.number: p.text for p in art10.paragraphs}
    assert texts["1"].startswith("When placing their devices on the market or putting them into service")
    # points (a)..(m) of paragraph 9 stay inside it, one a line
    assert "\n(a) a strategy for regulatory compliance" in texts["9"]
    assert "\n(m) processes for monitoring and measurement of output" in texts["9"]
    # the unnumbered subparagraph after paragraph 4 continues it
    assert "The Commission is empowered to adopt delegated acts in accordance with Article 115" in texts["4"]


def test_ivdr_paragraph_label_without_dot(ivdr: list[Unit]) -> None:
    """IVDR Art. 42(7) is printed "7 In the event" (no dot); it is still paragraph 7."""
    art42 = _by_locator(ivdr)["art-42"]
    assert _numbers(art42) == [str(n) for n in range(1, 10)]
    assert dict((p.number, p.text) for p in art42.paragraphs)["7"].startswith("In the event of restriction")


def test_mdr_annex_viii_rule_11(mdr: list[Unit]) -> None:
    annex = _by_locator(mdr)["annex-viii"]
    assert annex.heading == "Annex VIII – Classification rules"
    numbers = _numbers(annex)
    assert numbers[:3] == ["1", "2", "3.1"]
    assert [n for n in numbers if n.startswith("6.")] == ["6.1", "6.2", "6.3", "6.4", "6.5"]
    texts = dict((p.number, p.text) for p in annex.paragraphs)
    assert texts["6.3"].startswith("Rule 11\nSoftware intended to provide information which is used to take decisions")
    assert "Rule 12" not in texts["6.3"]
    assert texts["7.9"].startswith("Rule 22")
    # a section that is only a title goes with its first rule
    assert texts["6.1"].startswith("ACTIVE DEVICES\nRule 9")
    # small sections keep their subsections inside, labels and all
    assert "\n1.2. ‘Short term’ means" in texts["1"]


def test_mdr_annex_sections_as_the_annex_numbers_them(mdr: list[Unit]) -> None:
    units = _by_locator(mdr)
    annex_i = _numbers(units["annex-i"])
    assert annex_i[:3] == ["1", "2", "3"]
    assert "10.4.5" in annex_i and "23.4" in annex_i
    # "14.6 Any measurement" is printed without the final dot; it is still a subsection of 14
    section_14 = dict((p.number, p.text) for p in units["annex-i"].paragraphs)["14"]
    assert "\n14.6. Any measurement, monitoring or display scale" in section_14
    # Parts and Chapters that start again at 1 prefix their sections
    assert _numbers(units["annex-vi"])[:4] == ["a", "a.1", "a.2", "b"]
    assert "c.6.5.4" in _numbers(units["annex-vi"])
    assert _numbers(units["annex-xii"]) == ["i", "ii"]
    assert _numbers(units["annex-xv"])[:2] == ["i.1", "i.2"]
    assert _numbers(units["annex-xv"])[-1] == "iii"
    # numbering that runs on across Parts keeps plain numbers
    assert _numbers(units["annex-xiv"]) == [str(n) for n in range(1, 9)]


def test_mdr_annex_tables(mdr: list[Unit]) -> None:
    units = _by_locator(mdr)
    annex_xiii = dict((p.number, p.text) for p in units["annex-xiii"].paragraphs)
    # the list flattened into the table's first row is rebuilt once, one item a line
    assert annex_xiii["1"].startswith("For custom-made devices, the manufacturer")
    assert "\n— the name and address of the manufacturer, and of all manufacturing sites," in annex_xiii["1"]
    assert annex_xiii["1"].count("the specific characteristics of the product") == 1
    assert _numbers(units["annex-v"]) == ["1", "2", "3"]
    table = units["annex-xvii"].paragraphs[0].text
    assert table.startswith("Council Directive 90/385/EEC – Council Directive 93/42/EEC – This Regulation")
    assert "\nArticle 1(1) – Article 1(1) – Article 1(1)\n" in table


def test_recitals(mdr: list[Unit]) -> None:
    units = _by_locator(mdr)
    first = units["recital-1"]
    assert first.heading == "Recital 1"
    assert len(first.paragraphs) == 1 and first.paragraphs[0].number is None
    # label stripped, footnote markers "(3)" "(4)" removed, italics unmarked
    assert first.paragraphs[0].text.startswith(
        "Council Directive 90/385/EEC and Council Directive 93/42/EEC constitute the Union regulatory framework"
    )
    assert "other than in vitro diagnostic medical devices" in first.paragraphs[0].text
    assert "and of the Council. The two legislative acts" in units["recital-10"].paragraphs[0].text


@pytest.mark.parametrize("act", ["mdr", "ivdr"])
def test_locators_valid_unique_and_text_clean(corpus_dir: Path, act: str) -> None:
    units = list(parse(_files(corpus_dir, act), {}))
    locators = [u.locator for u in units]
    assert len(locators) == len(set(locators))
    for unit in units:
        assert is_locator(unit.locator), unit.locator
        numbers = _numbers(unit)
        assert len(numbers) == len(set(numbers)), unit.locator
        assert unit.paragraphs, unit.locator
        for number in numbers:
            assert is_locator(f"{unit.locator}.{number}"), (unit.locator, number)
        for paragraph in [*unit.paragraphs, unit.heading]:
            text = paragraph if isinstance(paragraph, str) else paragraph.text
            assert text.strip(), unit.locator
            assert unicodedata.normalize("NFC", text) == text
            assert not re.search(r"\*|#|<[a-z/]|\||\u00a0|  ", text), (unit.locator, text[:200])
            assert not re.search(r"of the Council \(\d+\)", text), (unit.locator, text[:200])


def test_article_and_annex_headings(mdr: list[Unit], ivdr: list[Unit]) -> None:
    assert _by_locator(mdr)["annex-i"].heading == "Annex I – General safety and performance requirements"
    assert _by_locator(mdr)["annex-iv"].heading == "Annex IV – EU declaration of conformity"
    assert _by_locator(ivdr)["art-1"].heading == "Article 1 – Subject matter and scope"


# --- broken input -----------------------------------------------------------------

ARTICLE = """---
source:
  chunk_type: "ARTICLE"
  chunk_id: "Article 5"
  chunk_title: "Placing on the market"
---
 ## Article 5

  ### Placing on the market

   1. A device may be placed on the market.
"""


def test_good_minimal_article(tmp_path: Path) -> None:
    path = tmp_path / "article-005.md"
    path.write_text(ARTICLE, encoding="utf-8")
    (unit,) = parse([path], {})
    assert unit.locator == "art-5" and unit.heading == "Article 5 – Placing on the market"
    assert [(p.number, p.text) for p in unit.paragraphs] == [("1", "A device may be placed on the market.")]


# each broken file: its name, its bytes, what the refusal must say and the line it must name (None: no line)
BAD_FILES = {
    "empty": ("article-001.md", b"", "empty", None),
    "not UTF-8": (
        "article-001.md", ARTICLE.replace("A device", "Un dispositif \u00e9").encode("latin-1"), "UTF-8", 11
    ),
    "no front matter": ("article-001.md", b" ## Article 1\n\n   1. Text.\n", "front matter", None),
    "truncated front matter": ("article-001.md", ARTICLE[:60].encode(), "front matter", None),
    "bad YAML": (
        "article-001.md", ARTICLE.replace('chunk_id: "Article 5"', 'chunk_id: "Article 5').encode(), "YAML", None
    ),
    "unknown chunk_type": ("article-001.md", ARTICLE.replace('"ARTICLE"', '"FOOTNOTE"').encode(), "chunk_type", None),
    "bad chunk_id": ("article-001.md", ARTICLE.replace('"Article 5"', '"Art five"').encode(), "chunk_id", None),
    "article without text": ("article-005.md", ARTICLE.split("   1.")[0].encode(), "no text", None),
    "recitals without recitals": (
        "recitals.md", b'---\nsource:\n  chunk_type: "RECITALS"\n---\n\n', "no recitals", None
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_refused(tmp_path: Path, case: str) -> None:
    name, content, reason, line = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    error = refused(lambda: parse([path], {}), path, reason)
    if line is not None:
        assert error.line == line


def test_duplicate_article(tmp_path: Path) -> None:
    first = tmp_path / "article-005.md"
    second = tmp_path / "article-005-copy.md"
    first.write_text(ARTICLE, encoding="utf-8")
    second.write_text(ARTICLE, encoding="utf-8")
    with pytest.raises(ParseError, match="art-5 occurs twice"):
        list(parse([first, second], {}))

