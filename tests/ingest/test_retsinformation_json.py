"""The retsinformation JSON parser against the real Danish act exports, and broken copies."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from ingest.parsers import get_parser
from ingest.units import ParseError, Unit
from kb.references import is_locator
from tests.ingest.refusals import refused

UDBUD_2025 = "udbudsloven/da/lbk-2025-116.json"
UDBUD_2023 = "udbudsloven/da/lbk-2023-10.json"
UDBUD_2015 = "udbudsloven/da/lov-2015-1564.json"
KLAGE = "klagenaevnsloven/da/lbk-2025-448.json"
ANNONCE = "annonceringsbekendtgoerelsen/da/bek-2015-1643.json"
MEDUDSTYR = "medicinsk-udstyr-loven/da/lbk-2023-682.json"
KOMITE = "komiteloven/da/lbk-2024-1268.json"
SUNDHED = "sundhedsloven/da/lbk-2025-275.json"

# Units per text: §§ in the export, minus stray entries, with ranges ("§§ 197-198.
# (Udelades)", "§ 44-48. (Udelades)") expanded to one unit per §.
COUNTS = {
    UDBUD_2025: 202,  # §§ 1–199 + 5a, 5b, 134a
    UDBUD_2023: 202,
    UDBUD_2015: 197,  # §§ 1–196, 199; the §§ 197–198 amendments are not there
    KLAGE: 34,
    ANNONCE: 6,
    MEDUDSTYR: 21,
    KOMITE: 60,
    SUNDHED: 404,
}
OPTIONS = {UDBUD_2015: {"drop_sections": ["197", "198"]}, KLAGE: {"drop_sections": ["196"]}}

_cache: dict[str, list[Unit]] = {}


def units(corpus_dir: Path, name: str, options: dict | None = None) -> list[Unit]:
    key = name if options is None else f"{name}:{options!r}"
    if key not in _cache:
        opts = OPTIONS.get(name, {}) if options is None else options
        _cache[key] = list(get_parser("retsinformation_json")([corpus_dir / name], opts))
    return _cache[key]


def by_locator(us: list[Unit]) -> dict[str, Unit]:
    return {u.locator: u for u in us}


def numbers_of(unit: Unit) -> list[str | None]:
    return [p.number for p in unit.paragraphs]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_locators_and_clean_text(corpus_dir: Path, name: str) -> None:
    us = units(corpus_dir, name)
    assert len(us) == COUNTS[name]
    locators = [u.locator for u in us]
    assert len(set(locators)) == len(locators)
    for u in us:
        assert is_locator(u.locator), u.locator
        assert u.paragraphs, u.locator
        assert u.heading.endswith("§ " + re.sub(r"(\d+)([a-z])", r"\1 \2", u.locator[2:]))
        numbered = [p.number for p in u.paragraphs if p.number]
        if numbered:
            assert numbered[0] == "1" and all(p.number for p in u.paragraphs), u.locator
            assert [int(re.match(r"\d+", n)[0]) for n in numbered] == sorted(
                int(re.match(r"\d+", n)[0]) for n in numbered
            )
        else:
            assert len(u.paragraphs) == 1, u.locator
        for p in u.paragraphs:
            if p.number:
                assert is_locator(f"{u.locator}.{p.number}")
            assert p.text and p.text == unicodedata.normalize("NFC", p.text)
            assert not re.match(r"(§ *\d+ ?[a-z]?\. |Stk\. *\d+ ?[a-z]?\. )", p.text), (u.locator, p.text[:40])
            assert not re.search(r"[\u00ad\u200b-\u200d]|\*\*|<[a-z/]|  ", p.text)
            assert all(line == line.strip() and line for line in p.text.split("\n"))


def test_numbered_paragraph_totals(corpus_dir: Path) -> None:
    totals = {
        name: sum(1 for u in units(corpus_dir, name) for p in u.paragraphs if p.number) for name in COUNTS
    }
    assert totals == {
        UDBUD_2025: 460,
        UDBUD_2023: 460,
        UDBUD_2015: 438,
        KLAGE: 81,
        ANNONCE: 8,
        MEDUDSTYR: 50,
        KOMITE: 173,
        SUNDHED: 978,
    }


def test_udbudsloven_2025_has_every_section_once(corpus_dir: Path) -> None:
    locators = [u.locator for u in units(corpus_dir, UDBUD_2025)]
    expected = [f"§-{n}" for n in range(1, 200)]
    for after, extra in (("§-5", ["§-5a", "§-5b"]), ("§-134", ["§-134a"])):
        i = expected.index(after) + 1
        expected[i:i] = extra
    assert locators == expected
    for loc in ("§-5a", "§-5b", "§-134a"):
        assert locators.count(loc) == 1
    us = by_locator(units(corpus_dir, UDBUD_2025))
    assert us["§-5a"].heading == "Kapitel 1 – § 5 a"
    assert us["§-134a"].heading == "Kapitel 11 – § 134 a"
    assert "EU-listen over ikkesamarbejdsvillige skattejurisdiktioner" in us["§-134a"].paragraphs[0].text
    # "§§ 197-198. (Udelades)" becomes one unit per §
    assert us["§-197"].paragraphs[0].text == "(Udelades)"
    assert us["§-198"].paragraphs[0].text == "(Udelades)"


def test_udbudsloven_innovation_partnership(corpus_dir: Path) -> None:
    us = by_locator(units(corpus_dir, UDBUD_2025))
    s73 = us["§-73"]
    assert s73.heading == "Kapitel 7 – § 73"
    # § 73 has a single stk. in LBK 116/2025: one unnumbered paragraph
    assert numbers_of(s73) == [None]
    assert "innovationspartnerskab" in s73.paragraphs[0].text
    assert s73.paragraphs[0].text.startswith("En ordregiver kan anvende innovationspartnerskaber")
    s74 = us["§-74"]
    assert numbers_of(s74) == ["1", "2", "3", "4", "5", "6"]
    assert "innovationspartnerskab" in s74.paragraphs[0].text
    items = s74.paragraphs[1].text.split("\n")
    assert items[0] == "Udbudsmaterialet skal indeholde oplysning om,"
    assert [line.split(")")[0] for line in items[1:]] == ["1", "2", "3", "4", "5", "6"]
    # "(EU-Tidende 2014, nr. L 94, side 65)" closes a parenthesis; it is no item
    assert s74.paragraphs[0].text.endswith("(EU-Tidende 2014, nr. L 94, side 65).")


def test_udbudsloven_citations_are_not_new_stk(corpus_dir: Path) -> None:
    us = by_locator(units(corpus_dir, UDBUD_2025))
    s195 = us["§-195"]
    assert numbers_of(s195) == ["1", "2"]
    assert s195.paragraphs[0].text.endswith("jf. dog stk. 2.")
    assert s195.paragraphs[1].text.startswith("Klage over tildeling af kontrakter omfattet af § 11")
    # § 24 (definitions): one stk. with 39 numbered items, each on its own line
    text = us["§-24"].paragraphs[0].text
    assert numbers_of(us["§-24"]) == [None]
    assert text.startswith("I denne lov forstås ved:\n1) Accessoriske indkøbsaktiviteter:")
    item_numbers = [m[1] for m in re.finditer(r"^(\d+)\) ", text, re.M)]
    assert item_numbers == [str(n) for n in range(1, 40)]
    assert "\na) rådgivning vedrørende teknisk infrastruktur" in text
    # chapters 18–20 repeat after chapter 20 in the export: shown without chapter
    assert us["§-194"].heading == "Kapitel 20 – § 194"
    assert us["§-195"].heading == "§ 195"


def test_udbudsloven_2023_version(corpus_dir: Path) -> None:
    us = by_locator(units(corpus_dir, UDBUD_2023))
    assert {"§-5a", "§-5b", "§-134a", "§-199"} <= set(us)
    assert "innovationspartnerskab" in us["§-73"].paragraphs[0].text


def test_udbudsloven_2015_without_stray_sections(corpus_dir: Path) -> None:
    us = units(corpus_dir, UDBUD_2015)
    locators = [u.locator for u in us]
    assert "§-197" not in locators and "§-198" not in locators
    # the export's stray entries (another act's § 1 and § 14 a, chapter 22) are gone
    assert locators.count("§-1") == 1 and "§-14a" not in locators
    assert locators[-3:] == ["§-195", "§-196", "§-199"]
    assert "§-5a" not in locators and "§-134a" not in locators
    d = by_locator(us)
    assert d["§-1"].paragraphs[0].text.startswith("Formålet med loven er at fastlægge procedurerne")
    # soft hyphens and zero-width joiners inside words are removed
    assert "for Klagenævnet for Udbud, jf. dog stk. 2." in d["§-195"].paragraphs[0].text
    # "udbudsmateriale, Stk. 5." (comma in the source) still opens stk. 5
    assert numbers_of(d["§-77"]) == [str(n) for n in range(1, 9)]
    # the same result without the manifest option: strays are found by their order
    plain = [u.locator for u in units(corpus_dir, UDBUD_2015, {})]
    assert plain == locators


def test_klagenaevnsloven_without_stray_196(corpus_dir: Path) -> None:
    us = units(corpus_dir, KLAGE)
    locators = [u.locator for u in us]
    assert "§-196" not in locators
    assert locators[0] == "§-1" and locators[-1] == "§-28"
    assert {"§-13a", "§-13b", "§-14a", "§-25a", "§-25b", "§-25c"} <= set(locators)
    d = by_locator(us)
    assert d["§-25a"].heading == "Kapitel 6 a – § 25 a"
    stk2 = d["§-1"].paragraphs[1]
    assert stk2.number == "2"
    assert stk2.text.startswith("Loven finder endvidere anvendelse ved håndhævelsen af\n1) udbudsloven")
    assert "\n4) lov om indhentning af tilbud i bygge- og anlægssektoren." in stk2.text
    assert [u.locator for u in units(corpus_dir, KLAGE, {})] == locators


def test_other_acts(corpus_dir: Path) -> None:
    annonce = by_locator(units(corpus_dir, ANNONCE))
    assert list(annonce) == [f"§-{n}" for n in range(1, 7)]
    assert "www.udbud.dk" in annonce["§-1"].paragraphs[0].text

    med = units(corpus_dir, MEDUDSTYR)
    assert [u.locator for u in med][-1] == "§-8"  # the amending act's § 18 is dropped
    assert by_locator(med)["§-1"].paragraphs[1].text.startswith(
        "I de i stk. 1 omhandlede regler kan der fastsættes bestemmelser om:\n1) Krav til udstyrets sikkerhed"
    )

    komite = by_locator(units(corpus_dir, KOMITE))
    assert [loc for loc in komite][-6:] == ["§-44", "§-45", "§-46", "§-47", "§-48", "§-49"]
    assert komite["§-46"].paragraphs[0].text == "(Udelades)"
    # the act's own §§ 18 and 36, not the amending acts' appended ones
    assert komite["§-18"].paragraphs[0].text.startswith("For meddelelse af tilladelse er det en betingelse")
    assert komite["§-36"].paragraphs[0].text.startswith("En regional komité består af mindst 7 medlemmer")
    assert komite["§-21a"].heading == "Kapitel 5 a – § 21 a"

    sund = by_locator(units(corpus_dir, SUNDHED))
    assert list(sund)[0] == "§-1" and list(sund)[-1] == "§-278"
    assert sund["§-1"].heading == "Kapitel 1 – § 1"
    assert sund["§-1"].paragraphs[0].text.startswith("Sundhedsvæsenet har til formål at fremme befolkningens sundhed")
    assert sund["§-27a"].heading == "Kapitel 6 a – § 27 a"


# --- synthetic and broken inputs ------------------------------------------------


def write_json(tmp_path: Path, provisions: list[dict], name: str = "act.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"provisions": provisions}, ensure_ascii=False), encoding="utf-8")
    return path


def parse(path: Path, options: dict | None = None) -> list[Unit]:
    return list(get_parser("retsinformation_json")([path], options or {}))


def test_stk_and_item_splitting_rules(tmp_path: Path) -> None:
    content = (
        "§ 3. Ordregiveren kan, jf. stk. 2, og i henhold til § 24, stk. 2, afvise tilbud. "
        "Stk. 2. Stk. 2 finder anvendelse, når 1) tilbuddet er for sent (se EU-Tidende 2014, side 1) eller "
        "2) tilbuddet er ufuldstændigt, jf. litra a) i bilaget. "
        "Stk. 3. Reglerne gælder for a) varer og b) tjenesteydelser. "
        "Stk. 3 a. Særregel."
    )
    path = write_json(
        tmp_path,
        [
            {"provision_ref": "1:3", "chapter": "1", "section": "3", "content": content},
            {"provision_ref": "1:4", "chapter": "1", "section": "4", "content": "§ 4 a. Kun én stk., jf. § 3, stk. 3."},
            {"provision_ref": "1:5", "chapter": "1", "section": "Kapitel 2", "content": "Kapitel 2 Definitioner"},
            {"provision_ref": "2:3", "chapter": "2", "section": "3", "content": "§ 3. Dublet."},
        ],
    )
    us = parse(path)
    assert [u.locator for u in us] == ["§-3", "§-4a"]
    s3 = us[0]
    assert numbers_of(s3) == ["1", "2", "3", "3a"]
    assert s3.paragraphs[0].text == "Ordregiveren kan, jf. stk. 2, og i henhold til § 24, stk. 2, afvise tilbud."
    assert s3.paragraphs[1].text == (
        "Stk. 2 finder anvendelse, når\n1) tilbuddet er for sent (se EU-Tidende 2014, side 1) eller\n"
        "2) tilbuddet er ufuldstændigt, jf. litra a) i bilaget."
    )
    assert s3.paragraphs[2].text == "Reglerne gælder for\na) varer og\nb) tjenesteydelser."
    assert us[1].heading == "Kapitel 1 – § 4 a"
    assert numbers_of(us[1]) == [None]


def test_drop_sections_option(tmp_path: Path) -> None:
    path = write_json(
        tmp_path,
        [
            {"provision_ref": "1:1", "chapter": "1", "section": "1", "content": "§ 1. Et."},
            {"provision_ref": "1:2", "chapter": "1", "section": "2", "content": "§ 2. To."},
        ],
    )
    assert [u.locator for u in parse(path, {"drop_sections": ["2"]})] == ["§-1"]
    with pytest.raises(ParseError):
        parse(path, {"drop_sections": "2"})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b'{"provisions": [{"section": "1", "content": "\xc2\xa7 1. T', "malformed JSON"),
        (b'{"provisions": [{"content": "\xa7 1. Tekst"}]}', "UTF-8"),
        (b'{"title": "x"}', "provisions"),
        (b'{"provisions": []}', "empty"),
        (b'{"provisions": [{"section": "1"}]}', "content"),
        (b'{"provisions": [{"section": "1", "content": "Kapitel 1"}]}', "no § provisions"),
    ],
)
def test_bad_input_raises_parse_error(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    refused(lambda: parse(path), path, reason)


def test_truncated_real_file_reports_line(corpus_dir: Path, tmp_path: Path) -> None:
    raw = (corpus_dir / ANNONCE).read_bytes()
    path = tmp_path / "truncated.json"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ParseError) as info:
        parse(path)
    assert "malformed JSON" in info.value.reason and info.value.line is not None
