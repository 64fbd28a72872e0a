"""docx parser: real Word files from the ERST package, generated documents and broken files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx as python_docx
import pytest

from ingest.parsers.docx import parse
from ingest.units import ParseError, Unit
from kb.references import is_locator

CONTRACT = "erst-it-rammeaftale/da/DA 2 - Leverancekontrakt Konsulentydelser.docx"
NEEDS = "erst-it-rammeaftale/da/DA 2 - Bilag 1 - Kundens behov.docx"


def _units(path: Path, options: dict | None = None) -> list[Unit]:
    return list(parse([path], options or {}))


def test_real_contract(corpus_dir: Path) -> None:
    units = _units(corpus_dir / CONTRACT)
    locators = [u.locator for u in units]
    assert len(units) == 37 and len(set(locators)) == 37
    assert all(is_locator(loc) for loc in locators)
    by = {u.locator: u for u in units}
    # Word numbers the Heading styles itself; counted in order they match the text's own
    # cross-references ("punkt 10.1", "punkt 12.1 Procedure for ændringer", "punkt 14")
    assert by["section-10.1"].heading == "10.1 Løbende rapportering"
    assert by["section-12.1"].heading == "12.1 Procedure for ændringer"
    assert by["section-14"].heading == "14 Fortrolighed"
    assert "punkt 10.1" in by["section-10.2"].paragraphs[0].text
    # body paragraphs written "15.1 ..." are clause 15's numbered paragraphs
    assert [p.number for p in by["section-15"].paragraphs][:3] == [None, "1", "2"]
    assert by["section-15"].paragraphs[1].text.startswith("Såfremt Leverandøren i forbindelse med opgavens")
    # the signature page before the first heading is the front matter, its table as rows
    front = by["section-0"]
    assert front.paragraphs[0].text == "Leverancekontrakt"
    assert any(p.text.startswith("For Kunden: | For Leverandøren:") for p in front.paragraphs)
    for unit in units:
        for para in unit.paragraphs:
            assert para.text and "\xa0" not in para.text and "  " not in para.text


def test_real_explicit_numbers(corpus_dir: Path) -> None:
    """Headings carrying their number ("2.1 Ideer ...") keep it; the rest continue from it."""
    by = {u.locator: u for u in _units(corpus_dir / NEEDS)}
    assert by["section-1.4.1"].heading == "1.4.1 Bilagsoversigt"
    assert by["section-2.1"].heading == "2.1 Ideer der indstilles til PoC"
    assert by["section-2.3"].heading == "2.3 Konsulentens kompetencer og erfaring"
    assert by["section-3"].heading == "3 Kundens projektorganisering"
    assert by["section-4"].heading == "4 Priser"


def _make(path: Path) -> Path:
    doc = python_docx.Document()
    doc.add_paragraph("Forside")
    doc.add_heading("Indledning", level=1)
    doc.add_paragraph("Første afsnit.")
    doc.add_heading("Formål", level=2)
    doc.add_paragraph("1.1.1 Et nummereret afsnit under 1.1 med tekst.")
    table = doc.add_table(rows=2, cols=2)
    for r, row in enumerate([["Navn", "Værdi"], ["A", "1"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    doc.add_heading("5 Priser", level=1)
    doc.add_paragraph("Pris.")
    doc.add_heading("Efter priser", level=2)
    doc.save(str(path))
    return path


def test_generated(tmp_path: Path) -> None:
    units = _units(_make(tmp_path / "gen.docx"))
    assert [(u.locator, u.heading) for u in units] == [
        ("section-0", "Preamble"),
        ("section-1", "1 Indledning"),
        ("section-1.1", "1.1 Formål"),
        ("section-5", "5 Priser"),
        ("section-5.1", "5.1 Efter priser"),
    ]
    formaal = units[2]
    assert [(p.number, p.text) for p in formaal.paragraphs] == [
        ("1", "Et nummereret afsnit under 1.1 med tekst."),
        (None, "Navn | Værdi\nA | 1"),
    ]


def test_broken_files(tmp_path: Path, corpus_dir: Path) -> None:
    empty = tmp_path / "empty.docx"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match="empty file") as err:
        _units(empty)
    assert str(empty) in str(err.value)

    junk = tmp_path / "junk.docx"
    junk.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(ParseError, match="not a .docx") as err:
        _units(junk)
    assert str(junk) in str(err.value)

    real = (corpus_dir / CONTRACT).read_bytes()
    truncated = tmp_path / "truncated.docx"
    truncated.write_bytes(real[: len(real) // 2])
    with pytest.raises(ParseError) as err:
        _units(truncated)
    assert str(truncated) in str(err.value)

    other_zip = tmp_path / "other.docx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ParseError, match="word/document.xml"):
        _units(other_zip)


def test_decompression_bomb_refused(tmp_path: Path) -> None:
    source = _make(tmp_path / "gen.docx")
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        dst.writestr("word/media/padding.bin", b"\0" * 5_000_000)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ParseError, match="decompression bomb") as err:
        _units(bomb, {"max_uncompressed_bytes": 1_000_000})
    assert str(bomb) in str(err.value)
    assert len(_units(bomb)) == 5  # under the default limit it reads


def test_external_entity_not_expanded(tmp_path: Path) -> None:
    source = _make(tmp_path / "gen.docx")
    evil = tmp_path / "evil.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                text = data.decode("utf-8")
                head, body = text.split("?>", 1)
                text = head + '?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + body
                text = text.replace("Første afsnit.", "&e;")
                data = text.encode("utf-8")
            dst.writestr(info, data)
    try:
        units = _units(evil)
    except ParseError:
        return
    text = "\n".join(p.text for u in units for p in u.paragraphs)
    assert "root:" not in text
