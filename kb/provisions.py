"""Provisions a question names: "artikel 26", "Article 6(2)", "§ 73", "bilag III", "Annex VIII rule 11".

A procurement lawyer who names a provision wants that provision first; the
retriever puts what this module finds ahead of everything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.references import ACT_NAMES, ACT_NUMBERS, extract_citations

_ANY_DOC = "q-any-doc"  # stands for "the act the question has in mind", resolved by the knowledge base
_RULE = re.compile(r"\b(?:[Rr]ule|[Rr]egel)\s+(?P<num>\d{1,2})\b")
# how questions name the acts: the names the texts cite them by (ACT_NAMES), and the acts' own titles and short
# names that passages never use for themselves (kept out of ACT_NAMES, which resolves citations inside passages)
QUESTION_ACT_NAMES: dict[str, str] = ACT_NAMES | {
    "produktansvarsdirektivet": "pld",
    "produktansvarsdirektiv": "pld",
    "product liability directive": "pld",
    "pld": "pld",
    "forordningen om medicinsk udstyr": "mdr",
    "medical devices regulation": "mdr",
    "in vitro diagnostic medical devices regulation": "ivdr",
    "det europæiske sundhedsdataområde": "ehds",
    "european health data space": "ehds",
    "nis 2": "nis2",
    "nis2-direktivet": "nis2",
    "videnskabsetikloven": "komiteloven",
    "persondataforordningen": "gdpr",
    "udbudsdirektivet": "procurement-directive",
    "udbudsdirektiv": "procurement-directive",
    "2014/24/eu": "procurement-directive",  # in questions only: ACT_NUMBERS resolves the passages' own citations
    "procurement directive": "procurement-directive",
    "public procurement directive": "procurement-directive",
}
_NAMES = sorted(QUESTION_ACT_NAMES, key=len, reverse=True)


@dataclass(frozen=True)
class NamedProvision:
    """A locator the question names, with the acts it may belong to (None: any act that has it)."""

    locator: str
    doc_ids: tuple[str, ...] | None = None
    rule: int | None = None  # a classification rule of MDR/IVDR Annex VIII, found by its text


def acts_named(question: str) -> list[str]:
    """Doc ids of the acts a question names, by name ("udbudsloven", "GDPR") or number ("2017/745")."""
    lowered = question.lower()
    found: list[str] = []
    for number, doc_id in ACT_NUMBERS.items():
        if number in lowered and doc_id not in found:
            found.append(doc_id)
    for name in _NAMES:
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lowered) and QUESTION_ACT_NAMES[name] not in found:
            found.append(QUESTION_ACT_NAMES[name])
    return found


def named_provisions(question: str) -> list[NamedProvision]:
    """The provisions a question names, in the order it names them."""
    acts = tuple(acts_named(question)) or None
    out: list[NamedProvision] = []
    for ref in extract_citations(question, _ANY_DOC, own_provisions=True):
        doc_id, _, locator = ref.partition(":")
        out.append(NamedProvision(locator, acts if doc_id == _ANY_DOC else (doc_id,)))
    rules = [int(m["num"]) for m in _RULE.finditer(question)]
    if rules:
        # "Annex VIII rule 11" names the rule, not the whole annex
        out = [p for p in out if p.locator != "annex-viii"]
        rule_acts = tuple(a for a in (acts or ("mdr",)) if a in ("mdr", "ivdr")) or ("mdr",)
        out.extend(NamedProvision("annex-viii", rule_acts, rule=n) for n in rules)
    return out


_ASKS_DEFINITION = re.compile(
    r"^\s*(?:what\s+(?:is|are)\s+(?:an?\s+|the\s+)?|what\s+does\s+.+\s+mean|define\b|definition\s+of|"
    r"hvad\s+(?:er|betyder)\s+(?:en\s+|et\s+)?|hvad\s+forstås\s+ved|hvordan\s+defineres|definitionen\s+af)",
    re.IGNORECASE,
)
_DEFINED_TERM = re.compile(r"^\s*[‘'\"»«„“]([^’'\"»«”“]{2,90})[’'\"«»”“]\s*(?:means|:|betyder|forstås|shall mean)", re.IGNORECASE)


def asks_for_definition(question: str) -> bool:
    """'What is a deployer?', 'Hvad forstås ved sekundær anvendelse?': the question wants a definition."""
    return _ASKS_DEFINITION.search(question) is not None


def defined_term(text: str) -> str | None:
    """The term a definition passage defines ("‘deployer’ means …", "»idriftsætter«: …"), else None."""
    match = _DEFINED_TERM.match(text)
    return match.group(1) if match else None
