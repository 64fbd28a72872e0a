"""The Formex parser on the real AI Act (OJ package) and GDPR (consolidated, en + da)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.parsers import get_parser
from ingest.units import ParseError, Unit
from kb.references import is_locator
from tests.ingest.refusals import refused

MARKUP = re.compile(r"<[A-Za-z/!?]|\*\*|^#|`|&[a-z]+;", re.MULTILINE)


def _parse(files: list[Path]) -> list[Unit]:
    return list(get_parser("formex")(files, {}))


@pytest.fixture(scope="module")
def ai_act(corpus_dir: Path) -> list[Unit]:
    files = sorted((corpus_dir / "ai-act/en/formex").glob("L_202401689EN.0*.fmx.xml"))
    assert len(files) == 14
    return _parse(files)


@pytest.fixture(scope="module")
def gdpr_en(corpus_dir: Path) -> list[Unit]:
    return _parse([corpus_dir / "gdpr/en/formex.xml"])


@pytest.fixture(scope="module")
def gdpr_da(corpus_dir: Path) -> list[Unit]:
    return _parse([corpus_dir / "gdpr/da/formex.xml"])


def _by_locator(units: list[Unit]) -> dict[str, Unit]:
    return {u.locator: u for u in units}


def _kinds(units: list[Unit], prefix: str) -> list[str]:
    return [u.locator for u in units if u.locator.startswith(prefix + "-")]


def _check_clean(units: list[Unit]) -> None:
    locators = [u.locator for u in units]
    assert len(locators) == len(set(locators))
    for unit in units:
        assert is_locator(unit.locator), unit.locator
        assert unit.heading and not MARKUP.search(unit.heading), unit.heading
        assert unit.paragraphs, unit.locator
        numbers = [p.number for p in unit.paragraphs if p.number]
        assert len(numbers) == len(set(numbers)), unit.locator
        for par in unit.paragraphs:
            assert par.text.strip(), unit.locator
            assert not MARKUP.search(par.text), (unit.locator, par.text[:200])
            assert "  " not in par.text and "\t" not in par.text and "\xa0" not in par.text
            if par.number:
                assert is_locator(f"{unit.locator}.{par.number}"), (unit.locator, par.number)


def test_ai_act_units(ai_act: list[Unit]) -> None:
    assert _kinds(ai_act, "art") == [f"art-{n}" for n in range(1, 114)]
    assert _kinds(ai_act, "recital") == [f"recital-{n}" for n in range(1, 181)]
    romans = "i ii iii iv v vi vii viii ix x xi xii xiii".split()
    assert _kinds(ai_act, "annex") == [f"annex-{r}" for r in romans]
    # document order: recitals, then articles, then annexes
    kinds = [u.locator.split("-")[0] for u in ai_act]
    assert kinds == ["recital"] * 180 + ["art"] * 113 + ["annex"] * 13
    _check_clean(ai_act)


def test_ai_act_article_26(ai_act: list[Unit]) -> None:
    art = _by_locator(ai_act)["art-26"]
    assert art.heading == "Article 26 – Obligations of deployers of high-risk AI systems"
    assert [p.number for p in art.paragraphs] == [str(n) for n in range(1, 13)]
    assert art.paragraphs[0].text.startswith("Deployers of high-risk AI systems shall take appropriate technical")
    assert not art.paragraphs[0].text.startswith("1.")
    # subparagraphs stay in their paragraph, italics keep their text
    assert "Article 73 shall apply mutatis mutandis" in art.paragraphs[4].text
    assert "\nFor deployers that are financial institutions" in art.paragraphs[4].text
    assert not art.definitions


def test_ai_act_definitions(ai_act: list[Unit]) -> None:
    art = _by_locator(ai_act)["art-3"]
    assert art.definitions
    assert art.heading == "Article 3 – Definitions"
    assert art.paragraphs[0].number is None
    assert art.paragraphs[0].text == "For the purposes of this Regulation, the following definitions apply:"
    defs = [p for p in art.paragraphs if p.number]
    assert [p.number for p in defs] == [str(n) for n in range(1, 69)]
    assert defs[3].text.startswith("‘deployer’ means a natural or legal person")
    assert defs[0].text.startswith("‘AI system’ means a machine-based system")
    assert defs[67].text.startswith("‘downstream provider’ means")


def test_ai_act_points_and_lists(ai_act: list[Unit]) -> None:
    units = _by_locator(ai_act)
    art1 = units["art-1"]
    assert art1.heading == "Article 1 – Subject matter"  # the source's stray backtick is gone
    assert "This Regulation lays down:\n(a) harmonised rules" in art1.paragraphs[1].text
    # FT amounts as printed in the OJ, no-break spaces normalised
    assert "fines of up to EUR 35 000 000 or, if the offender is an undertaking, up to 7 % of" in (
        units["art-99"].paragraphs[2].text
    )
    # footnotes dropped, quotation marks rendered, the closing quote the source put
    # inside a footnote moved to the end of the quotation
    art102 = units["art-102"].paragraphs[0].text
    assert "of the European Parliament and of the Council, the requirements" in art102
    assert "\n‘When adopting detailed measures" in art102
    assert art102.endswith("shall be taken into account.’")
    assert "OJ C 517" not in " ".join(p.text for u in ai_act for p in u.paragraphs)


def test_ai_act_recitals(ai_act: list[Unit]) -> None:
    units = _by_locator(ai_act)
    first = units["recital-1"]
    assert first.heading == "Recital 1"
    assert len(first.paragraphs) == 1 and first.paragraphs[0].number is None
    assert first.paragraphs[0].text.startswith("The purpose of this Regulation is to improve the functioning")
    assert "(the ‘Charter’)" in first.paragraphs[0].text
    assert units["recital-180"].paragraphs[0].text.startswith("The European Data Protection Supervisor")


def test_ai_act_annexes(ai_act: list[Unit]) -> None:
    units = _by_locator(ai_act)
    annex3 = units["annex-iii"]
    assert annex3.heading == "Annex III – High-risk AI systems referred to in Article 6(2)"
    assert [p.number for p in annex3.paragraphs] == [None] + [str(n) for n in range(1, 9)]
    assert annex3.paragraphs[1].text.startswith("Biometrics, in so far as their use is permitted")
    assert "\n(a) remote biometric identification systems." in annex3.paragraphs[1].text
    assert annex3.paragraphs[4].text.startswith("Employment, workers’ management and access to self-employment")
    assert "(b) AI systems intended to be used to evaluate the creditworthiness" in annex3.paragraphs[5].text

    assert units["annex-x"].heading.startswith("Annex X – Union legislative acts on large-scale IT systems")
    assert [p.number for p in units["annex-vi"].paragraphs] == ["1", "2", "3", "4"]
    # sections restarting their numbering get qualified numbers
    numbers8 = [p.number for p in units["annex-viii"].paragraphs]
    assert numbers8[:3] == ["a", "a.1", "a.2"] and "c.5" in numbers8
    assert [p.number for p in units["annex-xi"].paragraphs] == ["1", "1.1", "1.2", "2", "2.1", "2.2", "2.3"]
    # numbered sections with numbered sub-points keep the act's numbers
    assert ["3", "3.1", "3.2"] == [p.number for p in units["annex-vii"].paragraphs][2:5]
    # Annex I: sections A and B, points 1..20 numbered continuously
    numbers1 = [p.number for p in units["annex-i"].paragraphs]
    assert numbers1 == ["a"] + [str(n) for n in range(1, 13)] + ["b"] + [str(n) for n in range(13, 21)]
    # dash indents
    assert "\n— trafficking in human beings," in units["annex-ii"].paragraphs[1].text


def test_gdpr_both_languages(gdpr_en: list[Unit], gdpr_da: list[Unit]) -> None:
    for units in (gdpr_en, gdpr_da):
        assert _kinds(units, "art") == [f"art-{n}" for n in range(1, 100)]
        assert _kinds(units, "recital") == [f"recital-{n}" for n in range(1, 174)]
        assert not _kinds(units, "annex")
        _check_clean(units)
    en, da = _by_locator(gdpr_en), _by_locator(gdpr_da)
    assert set(en) == set(da)
    for locator in en:
        assert [p.number for p in en[locator].paragraphs] == [p.number for p in da[locator].paragraphs], locator

    assert en["art-6"].heading == "Article 6 – Lawfulness of processing"
    assert da["art-6"].heading == "Artikel 6 – Lovlig behandling"
    assert all(u.heading.startswith("Artikel ") for u in gdpr_da if u.locator.startswith("art-"))
    assert da["recital-47"].heading == "Betragtning 47"
    assert en["recital-47"].heading == "Recital 47"
    assert "10 000 000 EUR" in en["art-83"].paragraphs[3].text


def test_gdpr_definitions(gdpr_en: list[Unit], gdpr_da: list[Unit]) -> None:
    en, da = _by_locator(gdpr_en)["art-4"], _by_locator(gdpr_da)["art-4"]
    for art in (en, da):
        assert art.definitions
        assert [p.number for p in art.paragraphs] == [None] + [str(n) for n in range(1, 27)]
    assert en.paragraphs[0].text == "For the purposes of this Regulation:"
    assert en.paragraphs[1].text.startswith("‘personal data’ means any information relating to an identified")
    assert en.paragraphs[4].text.startswith("‘profiling’ means")
    # the Danish text is a definition list (DLIST): term, separator, definition; » « quotes
    assert da.paragraphs[0].text == "I denne forordning forstås ved:"
    assert da.paragraphs[1].text.startswith("»personoplysninger«: enhver form for information")
    assert da.paragraphs[22].text.startswith("»berørt tilsynsmyndighed«: en tilsynsmyndighed")
    assert "\na) den dataansvarlige eller databehandleren er etableret" in da.paragraphs[22].text
    # a footnote inside a definition is dropped
    assert da.paragraphs[25].text.endswith("direktiv (EU) 2015/1535")


# --- bad input ------------------------------------------------------------------

_MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>{doctype}
<ACT><BIB.INSTANCE><LG.DOC>EN</LG.DOC></BIB.INSTANCE><ENACTING.TERMS>
<ARTICLE IDENTIFIER="001"><TI.ART>Article 1</TI.ART><STI.ART><P>Scope</P></STI.ART>
<PARAG><NO.PARAG>1.</NO.PARAG><ALINEA>Text {body} end.</ALINEA></PARAG>
</ARTICLE></ENACTING.TERMS></ACT>
"""


def test_minimal_act(tmp_path: Path) -> None:
    path = tmp_path / "act.xml"
    path.write_text(_MINIMAL.format(doctype="", body="<HT TYPE='BOLD'>bold</HT>"), encoding="utf-8")
    (unit,) = _parse([path])
    assert unit.locator == "art-1" and unit.heading == "Article 1 – Scope"
    assert unit.paragraphs[0].text == "Text bold end." and unit.paragraphs[0].number == "1"


def test_external_entity_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "xxe.xml"
    doctype = '\n<!DOCTYPE ACT [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    path.write_text(_MINIMAL.format(doctype=doctype, body="&e;"), encoding="utf-8")
    try:
        units = _parse([path])
    except ParseError as exc:
        assert str(path) in str(exc)
        return
    text = " ".join(p.text for u in units for p in u.paragraphs)
    assert "root:" not in text and "/bin/" not in text


def test_internal_entity_bomb_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    lol = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 8))
    doctype = f'\n<!DOCTYPE ACT [<!ENTITY l0 "lol">{lol}]>'
    path.write_text(_MINIMAL.format(doctype=doctype, body="&l7;"), encoding="utf-8")
    try:
        units = _parse([path])
    except ParseError:
        return
    assert "lollol" not in " ".join(p.text for u in units for p in u.paragraphs)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.xml", b"", "empty file"),
        ("blank.xml", b"  \n", "empty file"),
        ("latin1.xml", _MINIMAL.format(doctype="", body="Søgning").encode("latin-1"), "XML"),
        ("other.xml", b"<?xml version='1.0'?><ROOT><P>hello</P></ROOT>", "no recitals, articles or annexes"),
        ("index.xml", b"<?xml version='1.0'?><DOC><BIB.DOC/></DOC>", "package index"),
        (
            "nonumber.xml",
            b"<ACT><ARTICLE><TI.ART>Article</TI.ART><ALINEA>x</ALINEA></ARTICLE></ACT>",
            "without a number",
        ),
        (
            "twice.xml",
            b"<ACT><ARTICLE><TI.ART>Article 1</TI.ART><ALINEA>x</ALINEA></ARTICLE>"
            b"<ARTICLE><TI.ART>Article 1</TI.ART><ALINEA>y</ALINEA></ARTICLE></ACT>",
            "twice",
        ),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    refused(lambda: _parse([path]), path, reason)


def test_truncated_real_file(corpus_dir: Path, tmp_path: Path) -> None:
    data = (corpus_dir / "gdpr/en/formex.xml").read_bytes()
    path = tmp_path / "formex.xml"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParseError) as info:
        _parse([path])
    assert info.value.path == path and info.value.line is not None
    assert "not well-formed XML" in info.value.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="file not found"):
        _parse([tmp_path / "nope.xml"])


def test_definitions_in_numbered_paragraphs(tmp_path: Path) -> None:
    """EHDS-style: Art. 2(1) refers to other acts, Art. 2(2) lists definitions -> '2.1', '2.2'."""
    path = tmp_path / "defs.xml"
    path.write_text(
        """<ACT><ARTICLE><TI.ART>Article 2</TI.ART><STI.ART><P>Definitions</P></STI.ART>
        <PARAG><NO.PARAG>1.</NO.PARAG><ALINEA>The definitions in Regulation X apply.</ALINEA></PARAG>
        <PARAG><NO.PARAG>2.</NO.PARAG><ALINEA><P>The following definitions also apply:</P>
        <LIST TYPE="ARAB">
        <ITEM><NP><NO.P>(1)</NO.P>
        <TXT><QUOT.START CODE="2018"/>a<QUOT.END CODE="2019"/> means A;</TXT></NP></ITEM>
        <ITEM><NP><NO.P>(2)</NO.P>
        <TXT><QUOT.START CODE="2018"/>b<QUOT.END CODE="2019"/> means B.</TXT></NP></ITEM></LIST>
        </ALINEA></PARAG></ARTICLE></ACT>""",
        encoding="utf-8",
    )
    (unit,) = _parse([path])
    assert unit.definitions
    assert [(p.number, p.text) for p in unit.paragraphs] == [
        ("1", "The definitions in Regulation X apply."),
        ("2", "The following definitions also apply:"),
        ("2.1", "‘a’ means A;"),
        ("2.2", "‘b’ means B."),
    ]
