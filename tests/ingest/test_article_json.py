"""The article_json parser on the real EHDS, PLD and NIS2 exports, and on broken copies."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from ingest.parsers.article_json import parse
from ingest.units import ParseError, Unit
from kb.references import is_locator
from tests.ingest.refusals import refused


def _units(corpus_dir: Path, act: str) -> list[Unit]:
    return list(parse([corpus_dir / act / "en" / "articles.json"], {}))


@pytest.fixture(scope="module")
def ehds(corpus_dir: Path) -> list[Unit]:
    return _units(corpus_dir, "ehds")


@pytest.fixture(scope="module")
def pld(corpus_dir: Path) -> list[Unit]:
    return _units(corpus_dir, "pld")


@pytest.fixture(scope="module")
def nis2(corpus_dir: Path) -> list[Unit]:
    return _units(corpus_dir, "nis2")


def _by_locator(units: list[Unit]) -> dict[str, Unit]:
    return {u.locator: u for u in units}


def _numbers(unit: Unit) -> list[str]:
    return [p.number for p in unit.paragraphs if p.number is not None]


def _texts(unit: Unit) -> dict[str | None, str]:
    return {p.number: p.text for p in unit.paragraphs}


def _kinds(units: list[Unit], kind: str) -> list[str]:
    return [u.locator for u in units if u.locator.startswith(kind + "-")]


# --- counts and order ------------------------------------------------------------


def test_ehds_counts_and_order(ehds: list[Unit]) -> None:
    assert _kinds(ehds, "recital") == [f"recital-{n}" for n in range(1, 116)]
    assert _kinds(ehds, "art") == [f"art-{n}" for n in range(1, 106)]
    assert _kinds(ehds, "annex") == ["annex-i", "annex-ii", "annex-iii", "annex-iv"]
    assert [u.locator for u in ehds] == _kinds(ehds, "recital") + _kinds(ehds, "art") + _kinds(ehds, "annex")


def test_pld_counts(pld: list[Unit]) -> None:
    assert _kinds(pld, "recital") == [f"recital-{n}" for n in range(1, 65)]
    assert _kinds(pld, "art") == [f"art-{n}" for n in range(1, 25)]
    # the single, unnumbered "ANNEX" (correlation table) is annex-i
    assert _kinds(pld, "annex") == ["annex-i"]
    assert _by_locator(pld)["annex-i"].heading == "Annex – Correlation table"


def test_nis2_counts(nis2: list[Unit]) -> None:
    assert _kinds(nis2, "recital") == [f"recital-{n}" for n in range(1, 145)]
    # Article 17 (International cooperation) is missing from the export: its entry
    # holds a piece of Annex III's correlation table instead, which goes to annex-iii.
    assert _kinds(nis2, "art") == [f"art-{n}" for n in range(1, 47) if n != 17]
    assert _kinds(nis2, "annex") == ["annex-i", "annex-ii", "annex-iii"]
    table = _by_locator(nis2)["annex-iii"].paragraphs[0].text
    assert "\nArticle 14(1) and (2) – Article 21(1) to (4)\n" in table
    assert table.startswith("Directive (EU) 2016/1148 – This Directive\nArticle 1(1) – Article 1(1)\n")


def test_repeated_last_recital_given_once(nis2: list[Unit]) -> None:
    recital = _by_locator(nis2)["recital-144"]
    assert recital.heading == "Recital 144"
    # footnote markers "(25)" and "(26)" are dropped
    assert recital.paragraphs[0].text == (
        "The European Data Protection Supervisor was consulted in accordance with Article 42(1) of "
        "Regulation (EU) 2018/1725 of the European Parliament and of the Council and delivered an "
        "opinion on 11 March 2021,"
    )


# --- articles --------------------------------------------------------------------


def test_numbered_paragraphs_with_points_inside(nis2: list[Unit], ehds: list[Unit]) -> None:
    art21 = _by_locator(nis2)["art-21"]
    assert art21.heading == "Article 21 – Cybersecurity risk-management measures"
    assert _numbers(art21) == ["1", "2", "3", "4", "5"]
    para2 = _texts(art21)["2"]
    assert para2.startswith("The measures referred to in paragraph 1 shall be based on an all-hazards approach")
    assert "\n(a) policies on risk analysis and information system security;" in para2
    assert "\n(j) the use of multi-factor authentication" in para2
    art1 = _by_locator(ehds)["art-1"]
    assert art1.heading == "Article 1 – Subject matter and scope"
    assert _texts(art1)["1"].startswith("This Regulation establishes the European Health Data Space (EHDS)")


def test_article_without_numbered_paragraphs(ehds: list[Unit], pld: list[Unit]) -> None:
    art1 = _by_locator(pld)["art-1"]
    assert _numbers(art1) == []
    assert art1.paragraphs[0].text.startswith("This Directive lays down common rules on the liability")
    art105 = _by_locator(ehds)["art-105"]
    # points stay with the sentence they complete
    assert "shall apply as follows:\n(a) from 26 March 2029" in art105.paragraphs[2].text


def test_article_title_left_in_text(ehds: list[Unit]) -> None:
    """EHDS Art. 87 has no title field: its title is the text's first block."""
    art87 = _by_locator(ehds)["art-87"]
    assert art87.heading == (
        "Article 87 – Storage of personal electronic health data by health data access bodies "
        "and secure processing environments"
    )
    assert _numbers(art87)[0] == "1"


def test_stray_chapter_and_section_titles_cut(ehds: list[Unit], nis2: list[Unit], pld: list[Unit]) -> None:
    assert _texts(_by_locator(ehds)["art-2"])["2.ab"].endswith("other than the provision of healthcare.")
    for locator in ("art-2", "art-18", "art-24", "art-49", "art-104"):
        text = "\n".join(p.text for p in _by_locator(ehds)[locator].paragraphs)
        assert "SECTION" not in text and "PRIMARY USE" not in text and "SECONDARY USE" not in text, locator
    assert "COORDINATED CYBERSECURITY FRAMEWORKS" not in _texts(_by_locator(nis2)["art-6"])["41"]
    assert "SPECIFIC PROVISIONS" not in "\n".join(p.text for p in _by_locator(pld)["art-4"].paragraphs)


def test_last_article_without_signatures_and_footnotes(pld: list[Unit], nis2: list[Unit]) -> None:
    for units in (pld, nis2):
        last = [u for u in units if u.locator.startswith("art-")][-1]
        assert [p.text for p in last.paragraphs] == ["This Directive is addressed to the Member States."]
    assert all("METSOLA" not in p.text and "OJ C" not in p.text for u in nis2 for p in u.paragraphs)


# --- definitions -----------------------------------------------------------------


def test_ehds_definitions(ehds: list[Unit]) -> None:
    art2 = _by_locator(ehds)["art-2"]
    assert art2.heading == "Article 2 – Definitions" and art2.definitions
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["aa", "ab"]
    assert _numbers(art2) == ["1", "2"] + [f"2.{x}" for x in letters]
    texts = _texts(art2)
    # paragraph 1 takes other acts' definitions over, its points inside
    assert texts["1"].startswith(
        "For the purposes of this Regulation, the following definitions apply:\n"
        "(a) the definitions of ‘personal data’"
    )
    assert texts["2"] == "In addition, for the purposes of this Regulation the following definitions apply:"
    assert texts["2.a"] == (
        "‘personal electronic health data’ means data concerning health and genetic data, "
        "processed in an electronic form;"
    )
    assert texts["2.ab"].startswith("‘wellness application’ means")


@pytest.mark.parametrize(
    ("act", "article", "count", "first"),
    [("pld", "art-4", 18, "‘product’ means"), ("nis2", "art-6", 41, "‘network and information system’ means:")],
)
def test_numbered_definitions(corpus_dir: Path, act: str, article: str, count: int, first: str) -> None:
    units = _units(corpus_dir, act)
    art = _by_locator(units)[article]
    assert art.definitions
    assert art.paragraphs[0].number is None
    assert art.paragraphs[0].text == "For the purposes of this Directive, the following definitions apply:"
    assert _numbers(art) == [str(n) for n in range(1, count + 1)]
    assert _texts(art)["1"].startswith(first)
    # the JSON's own `definitions` list repeats the article, term by term and in order
    data = json.loads((corpus_dir / act / "en" / "articles.json").read_text(encoding="utf-8"))
    terms = [d["term"] for d in data["definitions"]]
    assert len(terms) == count
    for number, term in enumerate(terms, start=1):
        assert _texts(art)[str(number)].lower().startswith(f"‘{term.strip().lower()}"), (number, term)
    assert [u for u in units if u.definitions] == [art]


def test_nis2_definition_with_points(nis2: list[Unit]) -> None:
    first = _texts(_by_locator(nis2)["art-6"])["1"]
    point_a = "\n(a) an electronic communications network as defined in Article 2, point (1),"
    point_a += " of Directive (EU) 2018/1972;"
    assert point_a in first
    assert "\n(c) digital data stored, processed, retrieved or transmitted" in first


# --- annexes ---------------------------------------------------------------------


def test_annexes(ehds: list[Unit], nis2: list[Unit]) -> None:
    units = _by_locator(ehds)
    annex_i = units["annex-i"]
    assert annex_i.heading == (
        "Annex I – Main characteristics of priority categories of personal electronic health data for primary use"
    )
    assert _numbers(annex_i) == ["1", "2", "3", "4", "5", "6"]
    # the list 1–18 inside category 1 stays inside it
    assert "\n18. Information on a rare disease" in _texts(annex_i)["1"]
    assert _numbers(units["annex-iv"]) == [str(n) for n in range(1, 9)]
    nis2_units = _by_locator(nis2)
    assert nis2_units["annex-i"].heading == "Annex I – Sectors of high criticality"
    assert _numbers(nis2_units["annex-i"]) == [str(n) for n in range(1, 12)]
    assert _numbers(nis2_units["annex-ii"]) == [str(n) for n in range(1, 8)]
    energy = _texts(nis2_units["annex-i"])["1"]
    assert energy.startswith(
        "Energy\n(a) Electricity\n— Electricity undertakings as defined in Article 2, point (57)"
    )
    assert "of the European Parliament and of the Council, which carry out" in energy
    # the annex's footnotes are not text of point 2
    footnote = "Directive 2008/98/EC of the European Parliament and of the Council of 19 November 2008"
    assert footnote not in _texts(nis2_units["annex-ii"])["2"]


# --- every unit ------------------------------------------------------------------


@pytest.mark.parametrize("act", ["ehds", "pld", "nis2"])
def test_locators_valid_unique_and_text_clean(corpus_dir: Path, act: str) -> None:
    units = _units(corpus_dir, act)
    locators = [u.locator for u in units]
    assert len(locators) == len(set(locators))
    for unit in units:
        assert is_locator(unit.locator), unit.locator
        assert unit.paragraphs, unit.locator
        numbers = _numbers(unit)
        assert len(numbers) == len(set(numbers)), unit.locator
        for number in numbers:
            assert is_locator(f"{unit.locator}.{number}"), (unit.locator, number)
        for text in [unit.heading, *(p.text for p in unit.paragraphs)]:
            assert text.strip(), unit.locator
            assert unicodedata.normalize("NFC", text) == text
            assert not re.search(r"\*|#|<[a-z/]|\||\u00a0|  |\$\(document\)", text), (unit.locator, text[:200])
            assert not re.search(r"of the Council \(\d+\)", text), (unit.locator, text[:200])


# --- broken input ----------------------------------------------------------------

GOOD = {
    "articles": [
        {
            "number": "1",
            "title": "Subject matter",
            "text": "1.\u00a0\u00a0\u00a0This Act applies.\n\n2.\u00a0\u00a0\u00a0It also:\n\n(a)\n\ndoes this.",
        }
    ],
    "recitals": [{"recital_number": 1, "text": "Whereas."}],
    "definitions": [],
}


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "articles.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _expect_error(path: Path, fragment: str) -> ParseError:
    return refused(lambda: parse([path], {}), path, fragment)


def test_good_minimal(tmp_path: Path) -> None:
    units = list(parse([_write(tmp_path, json.dumps(GOOD))], {}))
    assert [u.locator for u in units] == ["recital-1", "art-1"]
    assert [(p.number, p.text) for p in units[1].paragraphs] == [
        ("1", "This Act applies."),
        ("2", "It also:\n(a) does this."),
    ]


def test_truncated_json(tmp_path: Path) -> None:
    text = json.dumps(GOOD, indent=2)
    error = _expect_error(_write(tmp_path, text[: len(text) // 2]), "not valid JSON")
    assert error.line is not None and error.line > 1


def test_empty_file(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, ""), "empty")


def test_not_utf8(tmp_path: Path) -> None:
    bad = json.dumps(GOOD, ensure_ascii=False).replace("Whereas.", "Considérant.").encode("latin-1")
    _expect_error(_write(tmp_path, bad), "UTF-8")


def test_no_articles(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, json.dumps({"recitals": []})), "articles")
    _expect_error(_write(tmp_path, json.dumps([1, 2])), "articles")


def test_article_without_number(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    del data["articles"][0]["number"]
    _expect_error(_write(tmp_path, json.dumps(data)), "number")


def test_bad_article_number(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["articles"][0]["number"] = "one"
    _expect_error(_write(tmp_path, json.dumps(data)), "not an article number")


def test_conflicting_recitals(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["recitals"].append({"recital_number": 1, "text": "Something else."})
    _expect_error(_write(tmp_path, json.dumps(data)), "recital 1 occurs twice")
