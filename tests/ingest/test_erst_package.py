"""erst_package: the combined Markdown (documents 1–19) and the five .docx files (20–24)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from ingest.parsers.erst_package import parse, short_name
from ingest.units import ParseError, Unit
from kb.references import is_locator

FILES = [
    "combined-tender-documentation_DA1.md",
    "DA 2 Miniudbudsbetingelser.docx",
    "DA 2 - Leverancekontrakt Konsulentydelser.docx",
    "DA 2 - Bilag 1 - Kundens behov.docx",
    "DA 2 - Bilag 2.1- n CV'er.docx",
    "DA2 - Persondataunderretning 24-28.docx",
]


@pytest.fixture(scope="module")
def units(corpus_dir: Path) -> list[Unit]:
    return list(parse([corpus_dir / "erst-it-rammeaftale" / "da" / f for f in FILES], {}))


def _doc(locator: str) -> int:
    return int(locator.split("-", 1)[1].split(".")[0])


def test_documents_and_locators(units: list[Unit]) -> None:
    locators = [u.locator for u in units]
    assert len(units) == 393
    assert len(set(locators)) == len(locators)
    for unit in units:
        assert is_locator(unit.locator), unit.locator
        for para in unit.paragraphs:
            if para.number:
                assert is_locator(f"{unit.locator}.{para.number}")
    docs: dict[int, list[Unit]] = defaultdict(list)
    for unit in units:
        docs[_doc(unit.locator)].append(unit)
    assert sorted(docs) == list(range(1, 25))
    # documents in order
    assert [_doc(loc) for loc in locators] == sorted(_doc(loc) for loc in locators)
    without = {k for k, us in docs.items() if all(u.locator.endswith(".0") for u in us)}
    # the requirement matrix, the CV template and the cooperation matrix have no numbered clauses
    assert without == {3, 11, 12}
    assert docs[17][0].heading == "Leverancekontrakt Udvikling og vedligehold"
    assert docs[20][1].heading == "Miniudbudsbetingelser – 1 Den ordregivende myndighed"
    assert docs[24][0].locator == "section-24.0"


def test_data_processing_agreement(units: list[Unit]) -> None:
    by = {u.locator: u for u in units}
    dpa = [u for u in units if _doc(u.locator) == 16]
    assert all(u.heading.startswith("Bilag 7 Databehandleraftale") for u in dpa)
    assert [u.locator for u in dpa] == ["section-16.0"] + [f"section-16.{n}" for n in range(1, 19)]
    assert by["section-16.3"].heading == "Bilag 7 Databehandleraftale – 3 Databehandleren handler efter instruks"
    preamble = by["section-16.1"]
    assert [p.number for p in preamble.paragraphs] == [str(n) for n in range(1, 12)]
    assert preamble.paragraphs[0].text.startswith("Disse Bestemmelser fastsætter databehandlerens rettigheder")
    # "1." repeated in the Markdown: numbered in order; a list after ":" stays inside its paragraph
    security = by["section-16.5"]
    assert [p.number for p in security.paragraphs] == ["1", None, "2", "3", None]
    assert security.paragraphs[1].text.endswith(
        "\nen procedure for regelmæssig afprøvning, vurdering og evaluering af effektiviteten af de tekniske og "
        "organisatoriske foranstaltninger til sikring af behandlingssikkerhed."
    )
    transfer = by["section-16.7"]
    assert [p.number for p in transfer.paragraphs] == ["1", "2", "3", "4", "5"]
    assert "\n2. overlade behandling af personoplysninger til en underdatabehandler i et tredjeland" in (
        transfer.paragraphs[2].text
    )
    # 9.1–9.4 as in Datatilsynet's template (there numbered 10.1–10.4: the Markdown renumbered headings)
    assert [p.number for p in by["section-16.9"].paragraphs] == ["1", "2", "3", "4"]
    assert sum(1 for u in dpa for p in u.paragraphs if p.number) == 53


def test_tables_of_contents_and_markup_dropped(units: list[Unit]) -> None:
    text = "\n".join([u.heading for u in units] + [p.text for u in units for p in u.paragraphs])
    assert "COMBINED TENDER DOCUMENTATION" not in text
    assert "START-DOC" not in text and "=====" not in text
    assert not re.search(r"\*\*|^#|\]\(|!\[|&amp;|</?[a-z]+>", text, re.MULTILINE)
    # only real clauses titled "Indhold" (contents of a report) remain
    assert [u.locator for u in units if u.heading.endswith("Indhold")] == [
        "section-14.2.3", "section-14.3.3", "section-14.4.3", "section-14.6.3"
    ]
    # a TOC line "[1.1.1\tVedligehold og incidenthåndtering på PLEJ/PPRAM\t3](.)" is gone, the heading stays
    assert "PLEJ/PPRAM 3" not in text
    by = {u.locator: u for u in units}
    # "2.3 Indhold" in the reporting annex is a real clause, not a table of contents
    assert by["section-14.2.3"].paragraphs[0].text == "Regnearket skal indeholde flere faner med følgende indhold:"
    # a heading numbered out of sequence ("##### 1 Teknologi" inside 2.2) stays text of 2.2
    assert "1 Teknologi" in [p.text for p in by["section-4.2.2"].paragraphs]


def test_docx_documents(units: list[Unit]) -> None:
    by = {u.locator: u for u in units}
    assert by["section-21.10.1"].heading == "Leverancekontrakt Konsulentydelser – 10.1 Løbende rapportering"
    assert by["section-22.1.4.1"].heading == "Bilag 1 - Kundens behov – 1.4.1 Bilagsoversigt"
    assert by["section-24.2"].heading == "Persondataunderretning 24-28 – 2 Indledning"
    assert [u.locator for u in units if _doc(u.locator) == 23] == [
        "section-23.0", "section-23.1", *[f"section-23.1.{n}" for n in range(1, 6)]
    ]


def test_short_name() -> None:
    assert short_name("DA 1 - Bilag 7 Databehandleraftale - PPT.md") == "Bilag 7 Databehandleraftale"
    assert short_name("DA 1 Miniudbudsbetingelser Vedligehold og videreudvikling- PPT.md") == (
        "Miniudbudsbetingelser Vedligehold og videreudvikling"
    )
    assert short_name("DA2 - Persondataunderretning 24-28.docx") == "Persondataunderretning 24-28"


def test_bad_combined_files(tmp_path: Path) -> None:
    no_docs = tmp_path / "plain.md"
    no_docs.write_text("# Something\n\n## 1 Clause\n\nText.\n", encoding="utf-8")
    with pytest.raises(ParseError, match="DOCUMENT") as err:
        list(parse([no_docs], {}))
    assert str(no_docs) in str(err.value)

    gap = tmp_path / "gap.md"
    gap.write_text("## DOCUMENT 1: a.md\n\n## 1 A\n\nx\n\n## DOCUMENT 3: c.md\n\n## 1 C\n\ny\n", encoding="utf-8")
    with pytest.raises(ParseError, match="not numbered"):
        list(parse([gap], {}))

    total = tmp_path / "total.md"
    total.write_text("**Total Documents**: 2\n\n## DOCUMENT 1: a.md\n\n## 1 A\n\nx\n", encoding="utf-8")
    with pytest.raises(ParseError, match="announces 2"):
        list(parse([total], {}))

    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match="empty"):
        list(parse([empty], {}))

    broken_docx = tmp_path / "broken.docx"
    broken_docx.write_bytes(b"PK\x03\x04 truncated")
    ok = tmp_path / "ok.md"
    ok.write_text("## DOCUMENT 1: a.md\n\n## 1 A\n\nx\n", encoding="utf-8")
    with pytest.raises(ParseError) as err:
        list(parse([ok, broken_docx], {}))
    assert str(broken_docx) in str(err.value)
