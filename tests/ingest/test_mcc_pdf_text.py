"""mcc_pdf_text on the MCC-AI drafts (text converted from PDF) and on bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.parsers.mcc_pdf_text import parse
from ingest.units import ParseError, Unit
from kb.references import is_locator

HIGH = "mcc-ai/en/EU-AI-Clauses-High-Risk-Draft.md"
LIGHT = "mcc-ai/en/EU-AI-Clauses-Non-High-Risk.md"


def _units(path: Path) -> list[Unit]:
    return list(parse([path], {}))


def _by_loc(units: list[Unit]) -> dict[str, Unit]:
    return {u.locator: u for u in units}


def _check_common(units: list[Unit]) -> None:
    locators = [u.locator for u in units]
    assert len(locators) == len(set(locators))
    for unit in units:
        assert is_locator(unit.locator), unit.locator
        numbers = [p.number for p in unit.paragraphs if p.number]
        assert len(numbers) == len(set(numbers)), unit.locator
        for para in unit.paragraphs:
            if para.number:
                assert is_locator(f"{unit.locator}.{para.number}")
            text = para.text
            assert text == text.strip() and "  " not in text
            assert not re.search(r"\*\*|^#|</?[a-zA-Z][^>]*>|\f", text, re.MULTILINE), text[:80]
            assert not re.search(r"^\d+/18$|^DRAFT$|PROCUREMENT OF AI COMMUNITY", text, re.MULTILINE)


def test_high_risk_structure(corpus_dir: Path) -> None:
    units = _units(corpus_dir / HIGH)
    _check_common(units)
    locs = [u.locator for u in units]
    assert locs[0] == "section-0"
    assert locs[1:20] == [f"section-{n}" for n in range(1, 20)]
    assert locs[20:] == ["section-annex.a", "section-annex.b", "section-annex.c", "section-annex.d"]
    by = _by_loc(units)
    assert by["section-5"].heading.endswith("Article 5 – Record-keeping")
    assert by["section-2"].heading.startswith("Section B – Essential requirements in relation to the AI-system")
    assert [p.number for p in by["section-2"].paragraphs] == ["1", "2", "3", "4", "5", "6"]
    risk = by["section-2"].paragraphs[1].text
    assert risk.startswith("The risk management system shall at least comprise the following steps:")
    assert "\nd. adoption of suitable risk management measures" in risk
    # a point broken by a page break ("a." / "4/18" / text) is re-joined
    assert "\na. identification and analysis of the known and foreseeable risks" in risk
    # titles the conversion put after the clause label
    assert by["section-11"].heading.endswith(
        "Article 11 – [optional for non-high-risk AI systems] Conformity assessment"
    )
    assert by["section-11"].paragraphs[0].text.startswith("The Supplier shall ensure that the AI System undergoes")
    assert by["section-10"].heading.endswith("Quality management system")
    # an article without numbered paragraphs
    assert [p.number for p in by["section-12"].paragraphs] == [None]
    assert "Automatically generated logs" in by["section-12"].heading
    assert by["section-18"].paragraphs[5].number == "6"
    # definitions stay one per line inside paragraph 1.1
    defs = by["section-1"].paragraphs[0].text.split("\n")
    assert defs[1].startswith("Agreement: the entire agreement") and len(defs) == 9
    annex_c = by["section-annex.c"]
    assert [p.number for p in annex_c.paragraphs] == [None, "1", "2", "3", "4", "5"]
    assert "\n2.7. the validation and testing procedures used" in annex_c.paragraphs[2].text
    # the running footer is gone; the title survives once in the front matter
    text = "\n".join(p.text for u in units for p in u.paragraphs)
    assert text.count("Proposal for standard contractual clauses for the procurement of artificial intelligence") == 1
    assert "Introductory remarks" in [p.text for p in by["section-0"].paragraphs]
    # drafting notes are kept, as [..] text
    assert by["section-4"].paragraphs[3].text == (
        "[optional] The technical documentation and instructions for use must be drawn up in English."
    )


def test_non_high_risk_label_columns(corpus_dir: Path) -> None:
    """The light version prints a column of labels (2.1.–2.8.) before the paragraphs they number."""
    units = _units(corpus_dir / LIGHT)
    _check_common(units)
    by = _by_loc(units)
    assert [u.locator for u in units if u.locator.startswith("section-") and u.locator[8:].isdigit()] == [
        f"section-{n}" for n in range(0, 14)
    ]
    assert [u.locator for u in units if "annex" in u.locator] == [f"section-annex.{c}" for c in "abcdefgh"]
    art2 = by["section-2"].paragraphs
    assert [p.number for p in art2] == [str(n) for n in range(1, 10)]
    assert art2[2].text.startswith("The risk management measures referred to in paragraph 2.2, point (c)")
    assert art2[7].text.startswith("If reasonably required for the proper execution")
    assert art2[8].text.startswith("[Optional] If the Public Organisation's use")
    # two titles printed together: the first belongs to Article 4
    assert by["section-4"].heading.endswith("Article 4 – Technical documentation and instructions for use")
    assert by["section-5"].heading.endswith("Article 5 – Record-keeping")
    assert [p.number for p in by["section-5"].paragraphs] == ["1", "2", "3", "4"]
    # a long drafting note before the title is kept as text
    assert by["section-3"].heading.endswith("Article 3 – Data and data governance")
    assert by["section-3"].paragraphs[0].text.startswith("[Article 3 is only relevant for AI Systems")
    assert by["section-10"].paragraphs[1].text.startswith("The obligation as described in article 10.1")
    assert by["section-annex.h"].heading == (
        "Annex H – Measures to ensure an appropriate level of robustness, safety and cybersecurity"
    )
    assert sum(1 for u in units for p in u.paragraphs if p.number) == 57  # articles 47, Annex C 4, Annex D 6


def test_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("")
    with pytest.raises(ParseError, match="empty") as err:
        list(parse([empty], {}))
    assert str(empty) in str(err.value)

    latin = tmp_path / "latin1.md"
    latin.write_bytes("Article 1 Définitions\n1.1.\nTexte ø".encode("latin-1"))
    with pytest.raises(ParseError, match="UTF-8") as err:
        list(parse([latin], {}))
    assert str(latin) in str(err.value)

    prose = tmp_path / "prose.md"
    prose.write_text("Just a letter.\nNo clauses at all.\n")
    with pytest.raises(ParseError, match="no 'Article N'") as err:
        list(parse([prose], {}))
    assert str(prose) in str(err.value)
