"""contract_markdown on Markdown with numbered headings, and on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.parsers.contract_markdown import parse
from ingest.units import ParseError


def test_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("")
    with pytest.raises(ParseError, match="empty") as err:
        list(parse([empty], {}))
    assert str(empty) in str(err.value)

    # text without numbered headings (such as the MCC-AI text from a PDF) is not read another way: mcc_pdf_text is
    # the parser the manifest names for it
    prose = tmp_path / "prose.md"
    prose.write_text("Just a letter.\nArticle 1 Definitions\n1.1.\nNo Markdown clauses at all.\n")
    with pytest.raises(ParseError, match="no numbered clauses") as err:
        list(parse([prose], {}))
    assert str(prose) in str(err.value)


def test_markdown_headings(tmp_path: Path) -> None:
    """Real Markdown: numbered headings open clauses, TOC dropped, lost list numbers restored."""
    src = tmp_path / "contract.md"
    src.write_text(
        "# Kontrakt\n\nIndledning med **fed** tekst.\n\n## Indhold\n\n[1\tParter\t2](.)\n\n"
        "## 1 Parter\n\n1. Første bestemmelse.\n\n1. Anden bestemmelse:\n\n1. punkt a\n1. punkt b\n\n"
        "1. Tredje bestemmelse.\n\n### 1.1 Detaljer\n\n| a | b |\n|---|---|\n| c &amp; d | e |\n\n"
        "##### 1 Forkert nummer\n\nTekst.\n",
        encoding="utf-8",
    )
    units = {u.locator: u for u in parse([src], {})}
    assert list(units) == ["section-0", "section-1", "section-1.1"]
    assert [p.text for p in units["section-0"].paragraphs] == ["Kontrakt", "Indledning med fed tekst."]
    first = units["section-1"]
    assert first.heading == "1 Parter"
    # "1.", "2.", "3." would address section-1.1's place: with a sub-clause present they stay unnumbered
    assert [p.number for p in first.paragraphs] == [None, None, None]
    assert first.paragraphs[1].text == "Anden bestemmelse:\npunkt a\npunkt b"
    detail = units["section-1.1"]
    assert detail.paragraphs[0].text == "a | b\nc & d | e"
    assert [p.text for p in detail.paragraphs[1:]] == ["1 Forkert nummer", "Tekst."]

    flat = tmp_path / "flat.md"
    flat.write_text("## 3 Fortrolighed\n\n1. Første.\n\nMere tekst.\n\n1. Anden:\n\n1. x\n2. y\n\n1. Tredje.\n")
    (unit,) = list(parse([flat], {}))
    assert unit.locator == "section-3"
    assert [(p.number, p.text) for p in unit.paragraphs] == [
        ("1", "Første."), (None, "Mere tekst."), ("2", "Anden:\n1. x\n2. y"), ("3", "Tredje.")
    ]


def test_markdown_as_converted_documents_write_it(tmp_path: Path) -> None:
    """Items numbered from 3 right under a line, Word bullets, pipe rows without a delimiter row, "#2" headings: read
    as the contract reader always read them, through markdown-it's blocks."""
    src = tmp_path / "contract.md"
    src.write_text(
        "## 1 Leverancen\n\nLeverandøren skal:\n3. levere systemet\n4. drive det\n\n"
        "• Første punkt\n• Andet punkt\n\n"
        "| Ydelse | Pris |\n| Drift | 10 |\nefter tabellen\n\n#2 Priser\n\nTekst\n ## ikke en overskrift\n",
        encoding="utf-8",
    )
    units = {u.locator: [(p.number, p.text) for p in u.paragraphs] for u in parse([src], {})}
    assert units == {
        "section-1": [
            (None, "Leverandøren skal:\n3. levere systemet\n4. drive det\nFørste punkt\nAndet punkt"),
            (None, "Ydelse | Pris\nDrift | 10"),
            (None, "efter tabellen"),
        ],
        "section-2": [(None, "Tekst ## ikke en overskrift")],
    }
