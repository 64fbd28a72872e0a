"""The EUR-Lex HTML parser on the real AI Act (da, en) and NIS2 (da) pages, and on broken copies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.parsers import get_parser
from ingest.parsers.eurlex_html import parse
from ingest.units import ParseError, Unit
from kb.references import is_locator
from tests.ingest.refusals import refused

ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii"]


def _parse(*paths: Path, **options: object) -> list[Unit]:
    # The module's own function: the registry imports every parser module, and
    # this test should not depend on the others.
    return list(parse(list(paths), dict(options)))


@pytest.fixture(scope="module")
def ai_da(corpus_dir: Path) -> list[Unit]:
    return _parse(corpus_dir / "ai-act" / "da" / "eurlex.html")


@pytest.fixture(scope="module")
def ai_en(corpus_dir: Path) -> list[Unit]:
    return _parse(corpus_dir / "ai-act" / "en" / "eurlex.html")


@pytest.fixture(scope="module")
def nis2_da(corpus_dir: Path) -> list[Unit]:
    return _parse(corpus_dir / "nis2" / "da" / "eurlex.html")


def _by(units: list[Unit]) -> dict[str, Unit]:
    return {u.locator: u for u in units}


def _numbers(unit: Unit) -> list[str]:
    return [p.number for p in unit.paragraphs if p.number is not None]


def _kinds(units: list[Unit], kind: str) -> list[str]:
    return [u.locator for u in units if u.locator.startswith(kind + "-")]


def test_registered() -> None:
    assert get_parser("eurlex_html") is parse


# --- AI Act, Danish ----------------------------------------------------------------


def test_ai_act_da_units_in_order(ai_da: list[Unit]) -> None:
    assert _kinds(ai_da, "recital") == [f"recital-{n}" for n in range(1, 181)]
    assert _kinds(ai_da, "art") == [f"art-{n}" for n in range(1, 114)]
    assert _kinds(ai_da, "annex") == [f"annex-{r}" for r in ROMAN]
    # document order: recitals, then articles, then annexes
    assert ai_da[0].locator == "recital-1"
    assert ai_da[180].locator == "art-1"
    assert ai_da[-1].locator == "annex-xiii"


def test_locators_valid_unique_and_text_clean(ai_da: list[Unit], ai_en: list[Unit], nis2_da: list[Unit]) -> None:
    for units in (ai_da, ai_en, nis2_da):
        locators = [u.locator for u in units]
        assert len(locators) == len(set(locators))
        for unit in units:
            assert is_locator(unit.locator), unit.locator
            assert unit.heading and unit.paragraphs, unit.locator
            numbers = _numbers(unit)
            assert len(numbers) == len(set(numbers)), unit.locator
            for para in unit.paragraphs:
                if para.number is not None:
                    assert is_locator(f"{unit.locator}.{para.number}"), (unit.locator, para.number)
                assert para.text.strip(), unit.locator
                assert not re.search(r"<[a-zA-Z/]|\*\*|^#|oj-(normal|note|super)|&[a-z]+;", para.text), unit.locator
                assert "  " not in para.text and "\xa0" not in para.text, unit.locator


def test_ai_act_da_article_26(ai_da: list[Unit]) -> None:
    art = _by(ai_da)["art-26"]
    assert art.heading == "Artikel 26 – Forpligtelser for idriftsættere af højrisiko-AI-systemer"
    assert _numbers(art) == [str(n) for n in range(1, 13)]
    first = art.paragraphs[0]
    assert first.number == "1"
    assert first.text.startswith("Idriftsættere af højrisiko-AI-systemer træffer passende tekniske")
    # a paragraph's second subparagraph stays inside it
    assert "finansielle institutioner" in art.paragraphs[4].text and art.paragraphs[4].number == "5"


def test_ai_act_da_points_stay_inside_paragraph(ai_da: list[Unit]) -> None:
    art = _by(ai_da)["art-1"]
    assert _numbers(art) == ["1", "2"]
    lines = art.paragraphs[1].text.split("\n")
    assert lines[0] == "Ved denne forordning fastsættes:"
    assert lines[1].startswith("a) harmoniserede regler for omsætning")


def test_ai_act_da_definitions(ai_da: list[Unit]) -> None:
    art = _by(ai_da)["art-3"]
    assert art.definitions is True
    assert art.heading == "Artikel 3 – Definitioner"
    assert art.paragraphs[0].number is None
    assert art.paragraphs[0].text == "I denne forordning forstås ved:"
    assert _numbers(art) == [str(n) for n in range(1, 69)]
    defs = {p.number: p.text for p in art.paragraphs}
    assert defs["1"].startswith("»AI-system«: et maskinbaseret system")
    assert defs["4"].startswith("»idriftsætter«:")
    assert defs["49"].split("\n")[1].startswith("a) et menneskes død")
    assert sum(u.definitions for u in ai_da) == 1


def test_ai_act_da_recital(ai_da: list[Unit]) -> None:
    recital = _by(ai_da)["recital-1"]
    assert recital.heading == "Betragtning 1"
    assert len(recital.paragraphs) == 1 and recital.paragraphs[0].number is None
    assert recital.paragraphs[0].text.startswith("Formålet med denne forordning er at forbedre")


def test_ai_act_da_annex_iii(ai_da: list[Unit]) -> None:
    annex = _by(ai_da)["annex-iii"]
    assert annex.heading == "Bilag III – Højrisiko-AI-systemer omhandlet i artikel 6, stk. 2"
    assert annex.paragraphs[0].number is None
    assert annex.paragraphs[0].text.startswith("Højrisiko-AI-systemer i henhold til artikel 6, stk. 2")
    assert _numbers(annex) == [str(n) for n in range(1, 9)]
    point1 = annex.paragraphs[1].text.split("\n")
    assert point1[0].startswith("Biometri, for så vidt")
    assert point1[1] == "a) systemer til biometrisk fjernidentifikation."


def test_ai_act_da_annex_sections(ai_da: list[Unit]) -> None:
    units = _by(ai_da)
    # Annex VII numbers its sections and points: 1, 2, 3, 3.1 … 5.3
    assert _numbers(units["annex-vii"])[:5] == ["1", "2", "3", "3.1", "3.2"]
    # Annex VIII restarts 1, 2, … in Sections A, B, C: the section letter keeps them apart
    viii = _numbers(units["annex-viii"])
    assert viii[:3] == ["a", "a.1", "a.2"] and "b.9" in viii and viii[-1] == "c.5"
    # Annex XI: Section 1 points 1–2, Section 2 points 1–3
    assert _numbers(units["annex-xi"]) == ["1", "1.1", "1.2", "2", "2.1", "2.2", "2.3"]
    assert units["annex-xi"].paragraphs[0].text.startswith("Afsnit 1 – Oplysninger, der skal forelægges af alle")
    # Annex VI uses another layout for its points
    assert _numbers(units["annex-vi"]) == ["1", "2", "3", "4"]
    # Annex II has only indents: one unnumbered paragraph
    annex_ii = units["annex-ii"]
    assert _numbers(annex_ii) == [] and "\n— terrorisme" in annex_ii.paragraphs[0].text


def test_footnotes_dropped_and_exponents_kept(ai_da: list[Unit], nis2_da: list[Unit]) -> None:
    text = "\n".join(p.text for u in ai_da for p in u.paragraphs)
    # the footnote marker "(41)" after "1025/2012" is gone, with its space
    assert "nr. 1025/2012, der sædvanligvis" in text
    assert "10^25" in text
    nis2_annex = "\n".join(p.text for p in _by(nis2_da)["annex-i"].paragraphs)
    assert "direktiv (EU) 2019/944, der varetager »levering«" in nis2_annex
    assert "af 5. juni 2019 om fælles regler" not in nis2_annex  # footnote 1's body


# --- AI Act, English: same structure as the Danish -------------------------------------


def test_ai_act_en_matches_da(ai_da: list[Unit], ai_en: list[Unit]) -> None:
    assert [u.locator for u in ai_en] == [u.locator for u in ai_da]
    assert len(_kinds(ai_en, "art")) == 113
    assert len(_kinds(ai_en, "annex")) == 13
    assert len(_kinds(ai_en, "recital")) == 180
    for da, en in zip(ai_da, ai_en):
        assert [p.number for p in en.paragraphs] == [p.number for p in da.paragraphs], da.locator
        assert en.definitions == da.definitions, da.locator
    en = _by(ai_en)
    assert en["art-26"].heading == "Article 26 – Obligations of deployers of high-risk AI systems"
    assert _numbers(en["art-26"]) == _numbers(_by(ai_da)["art-26"]) == [str(n) for n in range(1, 13)]
    assert en["art-26"].paragraphs[0].text.startswith("Deployers of high-risk AI systems shall take appropriate")
    assert en["recital-47"].heading == "Recital 47"
    assert en["art-1"].heading == "Article 1 – Subject matter"  # the page prints "Subject matter`"
    assert en["annex-iii"].heading == "Annex III – High-risk AI systems referred to in Article 6(2)"


def test_ai_act_en_definitions_and_quotes(ai_en: list[Unit]) -> None:
    art = _by(ai_en)["art-3"]
    assert art.definitions and len(_numbers(art)) == 68
    assert art.paragraphs[0].text == "For the purposes of this Regulation, the following definitions apply:"
    defs = {p.number: p.text for p in art.paragraphs}
    assert defs["1"].startswith("‘AI system’ means a machine-based system")
    assert defs["68"].startswith("‘downstream provider’ means")


def test_ai_act_en_page_noise_dropped(ai_en: list[Unit]) -> None:
    text = "\n".join(p.text for u in ai_en for p in u.paragraphs) + "\n".join(u.heading for u in ai_en)
    for noise in ("EUR-Lex", "cookie", "Official Journal of the European Union L", "Select all documents"):
        assert noise not in text


# --- NIS2, Danish ----------------------------------------------------------------------


def test_nis2_da_units(nis2_da: list[Unit]) -> None:
    assert _kinds(nis2_da, "recital") == [f"recital-{n}" for n in range(1, 145)]
    assert _kinds(nis2_da, "art") == [f"art-{n}" for n in range(1, 47)]
    assert _kinds(nis2_da, "annex") == ["annex-i", "annex-ii", "annex-iii"]
    units = _by(nis2_da)
    art = units["art-21"]
    assert art.heading == "Artikel 21 – Foranstaltninger til styring af cybersikkerhedsrisici"
    assert _numbers(art) == ["1", "2", "3", "4", "5"]


def test_nis2_da_definitions(nis2_da: list[Unit]) -> None:
    art = _by(nis2_da)["art-6"]
    assert art.definitions is True
    assert art.heading == "Artikel 6 – Definitioner"
    assert art.paragraphs[0].text == "I dette direktiv forstås ved:"
    assert _numbers(art) == [str(n) for n in range(1, 42)]
    defs = {p.number: p.text for p in art.paragraphs}
    assert defs["3"].startswith("»cybersikkerhed«: cybersikkerhed som defineret")
    assert defs["1"].split("\n")[1].startswith("a) et elektronisk kommunikationsnet")
    assert [u.locator for u in nis2_da if u.definitions] == ["art-6"]


def test_nis2_da_annex_tables(nis2_da: list[Unit]) -> None:
    units = _by(nis2_da)
    annex = units["annex-i"]
    assert annex.heading == "Bilag I – Sektorer af særligt kritisk betydning"
    assert _numbers(annex) == [str(n) for n in range(1, 12)]
    energy = next(p for p in annex.paragraphs if p.number == "1").text.split("\n")
    assert energy[:2] == ["Energi", "a) Elektricitet"]
    assert energy[2].startswith("— Elektricitetsvirksomheder")
    assert _numbers(units["annex-ii"]) == [str(n) for n in range(1, 8)]
    table = units["annex-iii"].paragraphs[0].text.split("\n")
    assert table[0] == "Direktiv (EU) 2016/1148 | Nærværende direktiv"
    assert "Artikel 1, stk. 4 | Artikel 2, stk. 12" in table


# --- bad input -------------------------------------------------------------------------


# each broken page: its bytes, what the refusal must say and the line it must name (None: no line)
BAD_PAGES = {
    "empty": (b"  \n", "empty", None),
    "not UTF-8": ("<html><body><p>Bilag æøå</p></body></html>".encode("latin-1"), "not UTF-8", 1),
    "without an act": (b"<html><body><p class='oj-normal'>Nothing here</p></body></html>", "no EUR-Lex anchors", None),
    "article without a title": (
        b"<html><body>\n<div id='art_1'><p class='oj-normal'>Text</p></div></body></html>", "art_1", 2
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_PAGES))
def test_bad_page_refused(tmp_path: Path, case: str) -> None:
    content, reason, line = BAD_PAGES[case]
    path = tmp_path / "eurlex.html"
    path.write_bytes(content)
    error = refused(lambda: _parse(path), path, reason)
    if line is not None:
        assert error.line == line


def test_truncated_file(tmp_path: Path, corpus_dir: Path) -> None:
    raw = (corpus_dir / "ai-act" / "da" / "eurlex.html").read_bytes()
    path = tmp_path / "eurlex.html"
    path.write_bytes(raw[: len(raw) // 2])
    refused(lambda: _parse(path), path, "truncated")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.html"
    refused(lambda: _parse(path), path, "cannot read")


def test_external_entity_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "eurlex.html"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        '<div class="eli-subdivision" id="art_1"><p class="oj-ti-art">Article 1</p>'
        '<div class="eli-title"><p class="oj-sti-art">Subject &e; matter</p></div>'
        '<div id="001.001"><p class="oj-normal">1.   Text &e; here.</p></div></div>'
        "</body></html>",
        encoding="utf-8",
    )
    try:
        units = _parse(path)
    except ParseError:
        return
    text = "\n".join([u.heading for u in units] + [p.text for u in units for p in u.paragraphs])
    assert "root:" not in text
    assert units[0].locator == "art-1" and _numbers(units[0]) == ["1"]


def test_minimal_page_and_definitions_option(tmp_path: Path) -> None:
    path = tmp_path / "eurlex.html"
    path.write_text(
        "<html><body>"
        '<div id="art_2"><p class="oj-ti-art">Article 2</p>'
        '<div class="eli-title"><p class="oj-sti-art">Meaning of terms</p></div>'
        '<p class="oj-normal">In this Directive:</p>'
        '<table><tbody><tr><td><p class="oj-normal">(1)</p></td>'
        '<td><p class="oj-normal">‘product’ means any movable;</p></td></tr></tbody></table>'
        "</div></body></html>",
        encoding="utf-8",
    )
    plain = _parse(path)[0]
    assert not plain.definitions and _numbers(plain) == []
    assert plain.paragraphs[0].text == "In this Directive:\n(1) ‘product’ means any movable;"
    defs = _parse(path, definitions=[2])[0]
    assert defs.definitions and _numbers(defs) == ["1"]
    assert defs.paragraphs[1].text == "‘product’ means any movable;"
