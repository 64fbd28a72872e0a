"""Citation references: the grammar of `"<doc>:<locator>"` and finding references in text.

A reference is the stable legal address of a passage (DESIGN.md, "Citation
references"). The same module serves ingest (what a passage cites) and
retrieval (which provision a question names), so both read the law alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOC_ID = r"[a-z0-9][a-z0-9-]*"
_SUB = r"(?:\.[0-9a-z]+)*"
LOCATOR = (
    r"(?:art-\d+[a-z]?" + _SUB
    + r"|annex-[ivxlc]+" + _SUB
    + r"|recital-\d+"
    + r"|§-\d+[a-z]?" + _SUB
    + r"|section-[0-9a-z]+" + _SUB
    + r"|page-\d+)"
)
REFERENCE_RE = re.compile(rf"^(?P<doc>{DOC_ID}):(?P<locator>{LOCATOR})$")
LOCATOR_RE = re.compile(rf"^{LOCATOR}$")


@dataclass(frozen=True)
class Reference:
    """A parsed reference: the document and the locator inside it."""

    doc_id: str
    locator: str

    def __str__(self) -> str:
        return f"{self.doc_id}:{self.locator}"


def is_reference(ref: str) -> bool:
    """True when `ref` follows the DESIGN grammar (`ai-act:art-26.1`, `udbudsloven:§-73`)."""
    return REFERENCE_RE.match(ref) is not None


def is_locator(locator: str) -> bool:
    """True when `locator` is a valid locator (`art-26.1`, `annex-iii`, `section-5.2`)."""
    return LOCATOR_RE.match(locator) is not None


def parse_reference(ref: str) -> Reference:
    """Split a reference into doc id and locator; ValueError names what is wrong."""
    match = REFERENCE_RE.match(ref)
    if match is None:
        raise ValueError(
            f"not a reference: {ref!r} (expected '<doc>:<locator>', e.g. 'ai-act:art-26.1' or 'udbudsloven:§-73')"
        )
    return Reference(match["doc"], match["locator"])


def covers(parent: str, child: str) -> bool:
    """True when `child` equals `parent` or is a sub-reference of it.

    `ai-act:art-26` covers `ai-act:art-26.1` but never `ai-act:art-260`.
    """
    return child == parent or child.startswith(parent + ".")


def parent_references(ref: str) -> list[str]:
    """The reference and every reference above it, most specific first."""
    out = [ref]
    doc, _, locator = ref.partition(":")
    while "." in locator:
        locator = locator.rsplit(".", 1)[0]
        out.append(f"{doc}:{locator}")
    return out


# --- references in running text -------------------------------------------------

# EU acts by their number, as cited in the texts ("Regulation (EU) 2016/679").
ACT_NUMBERS: dict[str, str] = {
    "2024/1689": "ai-act",
    "2016/679": "gdpr",
    "2017/745": "mdr",
    "2017/746": "ivdr",
    "2025/327": "ehds",
    "2024/2853": "pld",
    "2022/2555": "nis2",
}

# Acts cited by name (lower case).
ACT_NAMES: dict[str, str] = {
    "databeskyttelsesforordningen": "gdpr",
    "general data protection regulation": "gdpr",
    "gdpr": "gdpr",
    "forordningen om kunstig intelligens": "ai-act",
    "ai act": "ai-act",
    "ai-forordningen": "ai-act",
    "medical device regulation": "mdr",
    "mdr": "mdr",
    "ivdr": "ivdr",
    "ehds": "ehds",
    "nis2": "nis2",
    "udbudsloven": "udbudsloven",
    "udbudslov": "udbudsloven",
    "klagenævnsloven": "klagenaevnsloven",
    "lov om klagenævnet for udbud": "klagenaevnsloven",
    "annonceringsbekendtgørelsen": "annonceringsbekendtgoerelsen",
    "lov om medicinsk udstyr": "medicinsk-udstyr-loven",
    "komitéloven": "komiteloven",
    "komiteloven": "komiteloven",
    "sundhedsloven": "sundhedsloven",
    "databeskyttelsesloven": "databeskyttelsesloven",
}

_ROMAN = r"[IVXLC]+"
_NUM = r"\d+[a-z]?"

# "Article 6(2)", "Articles 6 and 7", "artikel 6, stk. 2", "art. 26"
_ARTICLE = re.compile(
    rf"\b(?:Articles?|[Aa]rtikl?(?:el|er|erne|en)?|[Aa]rt\.)\s+(?P<num>{_NUM})"
    rf"(?:\s*\((?P<par>\d+)\))?"
    rf"(?:,?\s*stk\.\s*(?P<stk>\d+))?"
    rf"(?P<more>(?:\s*(?:,|and|og|or|eller|to|til|-|–)\s*{_NUM}(?:\s*\(\d+\))?)*)"
)
_MORE_NUM = re.compile(rf"(?:,|and|og|or|eller|-|–)\s*(?P<num>{_NUM})(?:\s*\((?P<par>\d+)\))?")
# "Annex III", "Annex III, point 5", "bilag III, punkt 5", "Annexes I and II"
_ANNEX = re.compile(
    rf"\b(?:Annex(?:es)?|[Bb]ilag(?:ene)?)\s+(?P<num>{_ROMAN})\b"
    rf"(?:,?\s*(?:point|punkt|section|afsnit)\s+(?P<point>\d+))?"
    rf"(?P<more>(?:\s*(?:,|and|og|or|eller|to|til)\s*{_ROMAN}\b)*)"
)
_MORE_ROMAN = re.compile(rf"(?:,|and|og|or|eller|to|til)\s*(?P<num>{_ROMAN})\b")
# "§ 24, stk. 2", "§ 24, nr. 3", "§§ 61-66", "§ 5 a"
_PARAGRAPH = re.compile(
    r"(?P<sign>§§?)\s*(?P<num>\d+)(?:\s?(?P<letter>[a-hj-z])\b)?"
    r"(?:,?\s*stk\.\s*(?P<stk>\d+))?"
    r"(?P<range>\s*(?:-|–|til)\s*\d+)?"
)
# "recital 47", "betragtning 47"
_RECITAL = re.compile(r"\b(?:[Rr]ecitals?|[Bb]etragtning(?:erne)?)\s+\(?(?P<num>\d+)\)?")
# What follows a provision and names the act it belongs to.
_OF_ACT = re.compile(
    r"^[^.;:]{0,40}?\b(?:of|in|to|i|til|af|jf\.)\s+(?:the\s+)?"
    r"(?:(?:Regulation|Directive|forordning|direktiv|Europa-Parlamentets og Rådets (?:forordning|direktiv))"
    r"\s*(?:\((?:EU|EF|EØF)\)|(?:nr\.)?)?\s*(?:No\s*|nr\.\s*)?(?P<num>\d{2,4}/\d+)"
    r"|(?P<name>[A-Za-zæøåÆØÅé-]+(?:loven|lov|forordningen|bekendtgørelsen)"
    r"|GDPR|AI Act|MDR|IVDR|EHDS|NIS2|General Data Protection Regulation|Medical Device Regulation)\b)",
    re.IGNORECASE,
)


# "databeskyttelsesforordningens artikel 28", "udbudslovens § 24": the act named before, in the genitive
_GENITIVE_ACT = re.compile(r"(?P<name>[A-Za-zæøåÆØÅé-]+(?:loven|lov|forordningen|bekendtgørelsen))s\s+$", re.IGNORECASE)
# "forordningens artikel 32": the regulation named earlier in the same text
_ANAPHOR = re.compile(r"\b(?:forordningens|lovens|direktivets)\s+$", re.IGNORECASE)
_ANY_ACT_NAME = re.compile(
    r"\b(?P<name>" + "|".join(sorted((re.escape(n) for n in ACT_NAMES), key=len, reverse=True)) + r")s?\b",
    re.IGNORECASE,
)
# Docs whose own provisions are articles, annexes and §§: the acts. A contract or guidance
# (or an organisation's own document) has sections, so an article it cites is always another act's.
LAW_DOCS = frozenset(ACT_NUMBERS.values()) | frozenset(ACT_NAMES.values())


def _cited_act(tail: str, own_doc: str, head: str, own_provisions: bool) -> str | None:
    """The doc id of the act a provision belongs to, None when it is an act outside the corpus.

    In order: an act named just before it in the genitive; an act named right after it;
    "forordningens" and the like: the act named last before it; else the citing act itself,
    when it has provisions of its own (a contract or guidance has none: None)."""
    genitive = _GENITIVE_ACT.search(head[-80:])
    if genitive is not None and genitive["name"].lower() in ACT_NAMES:
        return ACT_NAMES[genitive["name"].lower()]
    match = _OF_ACT.match(tail)
    if match is None:
        if _ANAPHOR.search(head[-40:]):
            named = [ACT_NAMES[m["name"].lower()] for m in _ANY_ACT_NAME.finditer(head)]
            return named[-1] if named else None
        return own_doc if own_provisions else None
    if match["num"]:
        number = match["num"]
        if len(number.split("/")[0]) == 2:  # 95/46 style
            return None
        return ACT_NUMBERS.get(number)
    return ACT_NAMES.get(match["name"].lower())


def extract_citations(text: str, doc_id: str, *, max_range: int = 20, own_provisions: bool | None = None) -> list[str]:
    """References that `text` cites, resolved to `"<doc>:<locator>"`, in order of appearance.

    Provisions with no act named after or (in the genitive) before them belong to
    `doc_id` when it has provisions of its own (`own_provisions`, by default when it
    is one of the acts); in a contract or guidance they belong to the act named last
    before them, or are dropped. Provisions of acts outside the corpus are dropped. Points below a paragraph are cut to the
    paragraph (`Article 5(1), point (a)` -> `art-5.1`), since passages stop there.
    """
    if own_provisions is None:
        own_provisions = doc_id in LAW_DOCS
    found: list[tuple[int, str]] = []

    def add(pos: int, end: int, locator: str) -> None:
        target = _cited_act(text[end : end + 120], doc_id, text[:pos], own_provisions)
        if target is not None:
            found.append((pos, f"{target}:{locator}"))

    for m in _ARTICLE.finditer(text):
        par = m["par"] or m["stk"]
        add(m.start(), m.end(), f"art-{m['num'].lower()}" + (f".{par}" if par else ""))
        if m["more"]:
            for extra in _MORE_NUM.finditer(m["more"]):
                extra_par = extra["par"]
                add(m.start(), m.end(), f"art-{extra['num'].lower()}" + (f".{extra_par}" if extra_par else ""))
    for m in _ANNEX.finditer(text):
        add(m.start(), m.end(), f"annex-{m['num'].lower()}" + (f".{m['point']}" if m["point"] else ""))
        if m["more"]:
            for extra in _MORE_ROMAN.finditer(m["more"]):
                add(m.start(), m.end(), f"annex-{extra['num'].lower()}")
    for m in _PARAGRAPH.finditer(text):
        number = m["num"] + (m["letter"] or "")
        add(m.start(), m.end(), f"§-{number}" + (f".{m['stk']}" if m["stk"] else ""))
        if m["range"] and m["sign"] == "§§":
            last = int(re.sub(r"\D", "", m["range"]))
            first = int(m["num"])
            if first < last <= first + max_range:
                for n in range(first + 1, last + 1):
                    add(m.start(), m.end(), f"§-{n}")
    for m in _RECITAL.finditer(text):
        add(m.start(), m.end(), f"recital-{m['num']}")

    seen: set[str] = set()
    out: list[str] = []
    for _, ref in sorted(found, key=lambda item: item[0]):
        if ref not in seen and is_reference(ref):
            seen.add(ref)
            out.append(ref)
    return out
