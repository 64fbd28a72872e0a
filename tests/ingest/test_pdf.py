"""pdf parser on the HLEG Ethics Guidelines (41 pages) and on broken PDFs."""

from __future__ import annotations

import re
from pathlib import Path

import pypdf
import pytest

from ingest.parsers.pdf import parse
from ingest.units import ParseError, Unit
from kb.references import is_locator

HLEG = "hleg-ethics-guidelines/en/ethics-guidelines-trustworthy-ai-2019.pdf"


@pytest.fixture(scope="module")
def units(corpus_dir: Path) -> list[Unit]:
    return list(parse([corpus_dir / HLEG], {}))


def test_pages(units: list[Unit]) -> None:
    assert [u.locator for u in units] == [f"page-{n}" for n in range(1, 42)]
    assert all(is_locator(u.locator) for u in units)
    for unit in units:
        assert unit.page == int(unit.locator.split("-")[1])
        assert unit.heading == f"Page {unit.page}"
        assert unit.paragraphs
        for para in unit.paragraphs:
            assert para.page == unit.page and para.number is None
            assert para.text and "  " not in para.text
            assert not re.fullmatch(r"\d{1,2}", para.text)  # printed page numbers dropped
    assert 600 < sum(len(u.paragraphs) for u in units) < 800


def test_text(units: list[Unit]) -> None:
    by = {u.locator: u for u in units}
    # printed page 2 is physical page 4: its running page number is gone
    assert by["page-4"].paragraphs[0].text == "EXECUTIVE SUMMARY"
    assert by["page-4"].paragraphs[1].text.startswith("The aim of the Guidelines is to promote Trustworthy AI.")
    assert "1.6 Societal and environmental well-being" in [p.text for p in by["page-21"].paragraphs]
    assert by["page-20"].paragraphs[0].text == "1.4 Transparency"
    text = " ".join(p.text for u in units for p in u.paragraphs)
    assert "self-determination" in text and "High-Level Expert Group" in text
    assert "High- Level" not in text
    assert "\uf0b7" not in text  # bullet glyphs
    # the guidelines' title is kept where it is text (cover, contact page), not repeated as a running header
    assert text.count("ETHICS GUIDELINES FOR TRUSTWORTHY AI") == 2


def test_limits(corpus_dir: Path) -> None:
    with pytest.raises(ParseError, match="max_pages"):
        list(parse([corpus_dir / HLEG], {"max_pages": 10}))
    with pytest.raises(ParseError, match="max_bytes"):
        list(parse([corpus_dir / HLEG], {"max_bytes": 1000}))


def test_broken_files(tmp_path: Path, corpus_dir: Path) -> None:
    real = (corpus_dir / HLEG).read_bytes()
    cases = {
        "empty.pdf": (b"", "empty"),
        "truncated.pdf": (real[: len(real) // 2], "truncated"),
        "notpdf.pdf": (b"<html>not a pdf</html>" * 20, "not a PDF"),
        "corrupt.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", "corrupt PDF|without pages"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ParseError, match=reason) as err:
            list(parse([path], {}))
        assert str(path) in str(err.value)


def test_encrypted(tmp_path: Path, corpus_dir: Path) -> None:
    reader = pypdf.PdfReader(str(corpus_dir / HLEG))
    writer = pypdf.PdfWriter()
    for page in reader.pages[:2]:
        writer.add_page(page)
    writer.encrypt("secret")
    path = tmp_path / "encrypted.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(ParseError, match="encrypted") as err:
        list(parse([path], {}))
    assert str(path) in str(err.value)
