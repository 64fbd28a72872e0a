"""A question parsed once: its language, stems, the provisions and acts it names, what kind of answer it wants.

Every stage of retrieval and answering used to tokenise the question and look for
named provisions itself; this is the one place that does it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from kb.keywords import tokenize, tokenize_query
from kb.provisions import NamedProvision, acts_named, asks_for_definition, named_provisions
from kb.references import ACT_NAMES
from kb.unit_index import asks_why

# the words by which a question addresses a provision rather than asks about it (legal structure, not topics)
_STRUCTURE_WORDS = (
    "artikel", "artikler", "article", "articles", "art", "stk", "stykke", "paragraph", "paragraf", "nr", "litra",
    "point", "punkt", "bilag", "annex", "betragtning", "recital", "kapitel", "chapter", "afsnit", "section",
    "forordning", "forordningen", "regulation", "direktiv", "directive", "lov", "loven", "act", "§",
    # and the words that ask: what does it say about …, hvad siger/står der om …
    "what", "which", "how", "does", "do", "say", "says", "state", "states", "about", "regarding", "concerning",
    "hvad", "hvilke", "hvilken", "hvordan", "siger", "sige", "står", "der", "om", "angående", "vedrørende",
)
_NUMBERING = re.compile(r"\d+[a-z]?|[ivxlc]+")


@dataclass(frozen=True)
class Question:
    """What retrieval needs to know about a question."""

    text: str
    language: str  # the language the answer is given in (asked, or detected)
    source_language: str  # the language the question is written in (detected)
    tokens: tuple[str, ...]  # stemmed both ways, each once (BM25 over passages in either language)
    own_tokens: tuple[str, ...]  # stemmed in its own language only (for translation by the lexicon)
    provisions: tuple[NamedProvision, ...] = field(default_factory=tuple)
    acts: tuple[str, ...] = field(default_factory=tuple)
    wants_definition: bool = False
    wants_reasons: bool = False  # "why …": a recital may be the answer

    @classmethod
    def parse(cls, text: str, language: str | None = None) -> Question:
        """The parsed question; cached (a Question is immutable), so the stages of one answer that each ask for it
        (ranking, abstention, a named provision's check) parse it once."""
        return _parse(cls, text, language)

    @classmethod
    def _parse_uncached(cls, text: str, language: str | None) -> Question:
        from kb.language import detect_language

        source = detect_language(text)
        return cls(
            text=text,
            language=language or source,
            source_language=source,
            tokens=tuple(tokenize_query(text)),
            own_tokens=tuple(tokenize(text, source)),
            provisions=tuple(named_provisions(text)),
            acts=tuple(acts_named(text)),
            wants_definition=asks_for_definition(text),
            wants_reasons=asks_why(text),
        )

    def topic_tokens(self) -> set[str]:
        """The question's stems (in its own language) less those that only address a provision: numbers, 'artikel',
        'stk.', act names. What is left is what the question asks about the provision."""
        structural: set[str] = set()
        for word in _STRUCTURE_WORDS + tuple(ACT_NAMES):
            structural.update(tokenize(word, self.source_language))
        return {t for t in self.own_tokens if not _NUMBERING.fullmatch(t) and t not in structural}

    def coverage(
        self, text: str, language: str, idf: Callable[[str], float], tokens: set[str] | None = None
    ) -> float:
        """IDF-weighted share of the question's words (or of `tokens`) that `text` (in `language`) contains."""
        words = set(tokenize(text, language))
        wanted = set(self.tokens) if tokens is None else tokens
        total = sum(idf(t) for t in wanted)
        return sum(idf(t) for t in wanted & words) / total if total else 0.0


@lru_cache(maxsize=4096)
def _parse(cls: type[Question], text: str, language: str | None) -> Question:
    return cls._parse_uncached(text, language)
