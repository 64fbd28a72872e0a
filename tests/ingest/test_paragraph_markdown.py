"""The Markdown parser for Danish acts against databeskyttelsesloven, and broken copies."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from ingest.parsers import get_parser
from ingest.units import Unit
from kb.references import is_locator
from tests.ingest.refusals import refused

DBL = "databeskyttelsesloven/da/lbk-2024-289.md"

_cache: dict[str, list[Unit]] = {}


def parse(path: Path, options: dict | None = None) -> list[Unit]:
    return list(get_parser("paragraph_markdown")([path], options or {}))


def dbl(corpus_dir: Path) -> list[Unit]:
    if DBL not in _cache:
        _cache[DBL] = parse(corpus_dir / DBL)
    return _cache[DBL]


def test_sections_in_order_once(corpus_dir: Path) -> None:
    us = dbl(corpus_dir)
    # §§ 1–48; the amending acts' §§ 2 and 3 after "*Ændringsbestemmelser*" are not the act's
    assert [u.locator for u in us] == [f"§-{n}" for n in range(1, 49)]
    for u in us:
        assert is_locator(u.locator)
        for p in u.paragraphs:
            if p.number:
                assert is_locator(f"{u.locator}.{p.number}")
    assert sum(1 for u in us for p in u.paragraphs if p.number) == 121
    assert sum(1 for u in us if [p.number for p in u.paragraphs] == [None]) == 18


def test_known_text_and_headings(corpus_dir: Path) -> None:
    d = {u.locator: u for u in dbl(corpus_dir)}
    s1 = d["§-1"]
    assert s1.heading == "Kapitel 1. Lovens materielle anvendelsesområde – § 1"
    assert [p.number for p in s1.paragraphs] == ["1", "2", "3"]
    assert s1.paragraphs[0].text.startswith("Loven supplerer og gennemfører Europa-Parlamentets og Rådets forordning")
    assert s1.paragraphs[1].text.startswith(
        "Loven og databeskyttelsesforordningen gælder for al behandling af personoplysninger"
    )
    assert "artikel 2, stk. 2, litra b-d, og lovens § 3." in s1.paragraphs[1].text
    assert [p.number for p in d["§-2"].paragraphs] == [str(n) for n in range(1, 9)]
    assert "Loven træder i kraft den 1. januar 2024" not in " ".join(p.text for p in d["§-2"].paragraphs)
    assert d["§-3"].paragraphs[-1].number == "10"
    # items stay in their stk., one per line
    assert d["§-4"].paragraphs[2].text.endswith(
        "hvis behandlingsaktiviteterne vedrører\n1) udbud af varer eller tjenester til sådanne registrerede, "
        "der befinder sig i Danmark, uanset om betaling fra den registrerede er påkrævet, eller\n"
        "2) overvågning af sådanne registreredes adfærd, for så vidt deres adfærd finder sted i Danmark."
    )
    assert d["§-24"].heading == "Kapitel 7. Tavshedspligt for databeskyttelsesrådgivere – § 24"
    assert [p.number for p in d["§-48"].paragraphs] == [None]
    assert d["§-48"].paragraphs[0].text == "Loven gælder ikke for Færøerne og Grønland."
    assert d["§-48"].heading == "Kapitel 13. Afsluttende bestemmelser – § 48"


def test_no_markup_no_annex_no_signature(corpus_dir: Path) -> None:
    texts = [p.text for u in dbl(corpus_dir) for p in u.paragraphs]
    everything = "\n".join(texts)
    for text in texts:
        assert text == unicodedata.normalize("NFC", text)
        assert not re.search(r"[*#`<>_]|^\s*-{3}", text, re.M), text[:60]
        assert all(line == line.strip() and line for line in text.split("\n"))
    # Bilag 1 (the GDPR text) and the signature are not part of any §
    assert "Artikel 94" not in everything and "HAR VEDTAGET DENNE FORORDNING" not in everything
    assert "Hummelgaard" not in everything and "Justitsministeriet" not in everything
    assert "Herved bekendtgøres" not in everything


# --- synthetic and broken inputs ------------------------------------------------

GOOD = """---
lov: Testloven
---

# Bekendtgørelse af testloven

> Herved bekendtgøres testloven.

## Kapitel 1

*Anvendelsesområde*

**§ 1.** Loven gælder for **alle**, jf. stk. 2.
*Stk. 2.* Stk. 1 gælder dog ikke for [visse](https://example.org) personer, når

   1) de er mindreårige eller
   2) de er under værgemål.

## Kapitel 2 a

*Særregler*

**§ 1 a.** Én stk.

*Ændringsbestemmelser*

**§ 2.** Loven træder i kraft den 1. januar 2024.

## Bilag 1 Noget

**§ 9.** Ikke en del af loven.
"""


def test_synthetic_act(tmp_path: Path) -> None:
    path = tmp_path / "act.md"
    path.write_text(GOOD, encoding="utf-8")
    us = parse(path)
    assert [u.locator for u in us] == ["§-1", "§-1a", "§-2"]
    s1 = us[0]
    assert s1.heading == "Kapitel 1. Anvendelsesområde – § 1"
    assert [(p.number, p.text) for p in s1.paragraphs] == [
        ("1", "Loven gælder for alle, jf. stk. 2."),
        ("2", "Stk. 1 gælder dog ikke for visse personer, når\n1) de er mindreårige eller\n2) de er under værgemål."),
    ]
    assert us[1].heading == "Kapitel 2 a. Særregler – § 1 a"
    assert [(p.number, p.text) for p in us[1].paragraphs] == [(None, "Én stk.")]
    # § 2 here comes after § 1 a, so the order rule keeps it; drop it by option
    assert [u.locator for u in parse(path, {"drop_sections": ["2"]})] == ["§-1", "§-1a"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        ("**§ 1.** Tekst æøå".encode("latin-1"), "UTF-8"),
        (b"---\nlov: x\n\n**\xc2\xa7 1.** Tekst\n", "front matter"),
        (b"---\nlov: [x\n---\n**\xc2\xa7 1.** Tekst\n", "YAML"),
        (b"# En overskrift\n\nIngen paragraffer her.\n", "no § provisions"),
    ],
)
def test_bad_input_raises_parse_error(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.md"
    path.write_bytes(data)
    refused(lambda: parse(path), path, reason)
