"""The keyword index: BM25 (bm25s) over passages stemmed in their own language (PyStemmer).

Dense search alone sends Danish questions to the biggest Danish text; BM25 with
Danish stemming finds the act that uses the question's words. Each passage is
stemmed with its language's stemmer; a question is stemmed both ways, since a
Danish question may need an English-only text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kb.folders import written_whole

_WORD = re.compile(r"§|\w+", re.UNICODE)
LANGUAGES = {"da": "danish", "en": "english"}


@lru_cache(maxsize=4)
def _stemmer(language: str):  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer(LANGUAGES.get(language, "english"))


@lru_cache(maxsize=4)
def _stopwords(language: str) -> frozenset[str]:
    from bm25s import stopwords

    words = stopwords.STOPWORDS_DANISH if language == "da" else stopwords.STOPWORDS_EN
    return frozenset(words)


def tokenize(text: str, language: str) -> list[str]:
    """Lower-cased, stop words dropped, stemmed in `language`; numbers kept (article numbers matter)."""
    stop = _stopwords(language)
    words = [w for w in _WORD.findall(text.lower()) if w not in stop and (len(w) > 1 or w.isdigit())]
    return _stemmer(language).stemWords(words)


# The most distinct terms of a query BM25 scores: each costs a pass over its postings. Evaluation questions have
# at most about 20; a 2,000-character question of distinct words would have a thousand.
QUERY_MAX_TERMS = 64


def tokenize_query(text: str) -> list[str]:
    """A question's tokens, stemmed in Danish and in English, each once: at most QUERY_MAX_TERMS, half from each."""
    seen: dict[str, None] = {}
    for language in LANGUAGES:
        own = dict.fromkeys(tokenize(text, language))
        for token in list(own)[: QUERY_MAX_TERMS // len(LANGUAGES)]:
            seen.setdefault(token, None)
    return list(seen)


@dataclass
class IndexedRow:
    """What the keyword index keeps of a passage, enough to filter without the store."""

    passage_id: str
    doc_id: str
    language: str
    kind: str
    in_force: bool


class KeywordIndex:
    """BM25 over all passages, with per-row fields for filtering by weight mask."""

    def __init__(
        self, bm25: object, rows: list[IndexedRow], stamp: str = "", lexicon: dict[str, dict[str, list[str]]] | None = None
    ) -> None:
        self.bm25 = bm25
        self.rows = rows
        self.stamp = stamp
        self.lexicon = lexicon or {"da": {}, "en": {}}
        self._fields = {
            name: np.array([getattr(r, name) for r in rows], dtype=object) for name in ("doc_id", "language", "kind")
        }
        self._in_force = np.array([r.in_force for r in rows], dtype=bool)
        self.row_of = {r.passage_id: i for i, r in enumerate(rows)}
        self._idf: dict[str, float] | None = None

    def idf(self, token: str) -> float:
        """log(N / document frequency) of a stemmed token; unseen tokens weigh like the rarest."""
        if self._idf is None:
            n = max(len(self.rows), 1)
            vocab = getattr(self.bm25, "vocab_dict", {}) or {}
            indptr = np.asarray(self.bm25.scores["indptr"]) if vocab else np.zeros(1)  # type: ignore[attr-defined]
            df = np.diff(indptr)
            self._idf = {t: float(np.log(n / max(int(df[i]), 1))) for t, i in vocab.items() if i < len(df)}
            self._idf_max = float(np.log(n))
        return self._idf.get(token, self._idf_max)

    @classmethod
    def build(
        cls, rows: list[IndexedRow], texts: list[str], stamp: str = "", lexicon: dict[str, dict[str, list[str]]] | None = None
    ) -> KeywordIndex:
        """Index `texts` (one per row, in the row's language)."""
        import bm25s

        corpus_tokens = [tokenize(text, row.language) or ["∅"] for row, text in zip(rows, texts, strict=True)]
        bm25 = bm25s.BM25()
        if corpus_tokens:
            bm25.index(corpus_tokens, show_progress=False)
        return cls(bm25, rows, stamp, lexicon)

    def unknown_share(self, tokens: tuple[str, ...] | list[str]) -> float:
        """The share of stemmed `tokens` that no indexed passage uses: a question about lasagne asks the corpus
        about words it does not have."""
        if not tokens:
            return 0.0
        vocab = getattr(self.bm25, "vocab_dict", {}) or {}
        return sum(t not in vocab for t in tokens) / len(tokens)

    def translated_tokens(self, query: str, language: str) -> list[str]:
        """The question's `language` stems translated into the other language with the learnt lexicon."""
        seen: dict[str, None] = {}
        for token in tokenize(query, language):
            for translated in self.lexicon.get(language, {}).get(token, ())[:1]:
                seen.setdefault(translated, None)
        return list(seen)

    def mask(
        self, doc_id: str | None = None, kind: str | None = None, language: str | None = None, in_force_only: bool = True
    ) -> np.ndarray:
        """1.0 for rows that pass the filters, 0.0 for the rest."""
        keep = self._in_force.copy() if in_force_only else np.ones(len(self.rows), dtype=bool)
        for name, value in (("doc_id", doc_id), ("kind", kind), ("language", language)):
            if value is not None:
                keep &= self._fields[name] == value
        return keep.astype(np.float32)

    def passes(self, passage_id: str, doc_id: str | None, kind: str | None, language: str | None, in_force_only: bool) -> bool:
        """Whether a passage passes the filters, from the fields kept here (no store round trip)."""
        i = self.row_of.get(passage_id)
        if i is None:
            return False
        row = self.rows[i]
        return (
            (not in_force_only or row.in_force)
            and (doc_id is None or row.doc_id == doc_id)
            and (kind is None or row.kind == kind)
            and (language is None or row.language == language)
        )

    def search(
        self, query: str, k: int, mask: np.ndarray | None = None, tokens: list[str] | None = None
    ) -> list[tuple[str, float]]:
        """Best `k` passage ids for `query` (or for the given stemmed `tokens`) with their BM25 scores (above zero)."""
        if not self.rows:
            return []
        vocab = self.bm25.vocab_dict  # type: ignore[attr-defined]
        tokens = [t for t in (tokens if tokens is not None else tokenize_query(query)) if t in vocab]
        if not tokens:
            return []
        scores = self.bm25.get_scores(tokens)  # type: ignore[attr-defined]
        if mask is not None:
            scores = scores * mask
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.rows[i].passage_id, float(scores[i])) for i in top if scores[i] > 0]

    # --- persistence: written beside the store, swapped in whole ---------------------

    def save(self, folder: Path) -> None:
        """Write to a temporary folder, then rename over `folder`, so a reader never sees half an index."""
        with written_whole(folder) as tmp:
            self.bm25.save(str(tmp / "bm25"))  # type: ignore[attr-defined]
            (tmp / "rows.json").write_text(
                json.dumps({"stamp": self.stamp, "rows": [r.__dict__ for r in self.rows], "lexicon": self.lexicon}, ensure_ascii=False)
            )

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex | None:
        """The saved index, or None when there is none."""
        import bm25s

        rows_file = folder / "rows.json"
        if not rows_file.exists():
            return None
        data = json.loads(rows_file.read_text())
        rows = [IndexedRow(**r) for r in data["rows"]]
        bm25 = bm25s.BM25.load(str(folder / "bm25")) if rows else bm25s.BM25()
        return cls(bm25, rows, data.get("stamp", ""), data.get("lexicon"))
