"""Reading passages and provisions from the store: by id, by reference, in the other languages, the neighbours in
the text, the provisions that cite one, and the provisions of other documents nearest in meaning.

Passages come from Chroma once and are kept until the store changes (the keyword index's stamp): the same passages
and units come up in answer after answer.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.errors import NotBuiltError, UnknownPassageError
from kb.match import Match
from kb.passage import Passage
from kb.references import covers
from kb.retrieval import SearchHit

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase


class Reader:
    """Reads one knowledge base's passages, with the caches that spare Chroma the repeats."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def passages_by_id(self, passage_ids: list[str]) -> dict[str, Passage]:
        """The passages with these ids, from a cache kept until the store changes (the keyword index's stamp), the rest
        from Chroma: fetching 20 passages' text and metadata costs 6-9 ms, and the same passages come up again and again."""
        cache = self._passage_cache
        if cache.get("\x00stamp") != self.kb.keywords.stamp or len(cache) > 50_000:
            cache.clear()
            cache["\x00stamp"] = self.kb.keywords.stamp
        missing = [pid for pid in passage_ids if pid not in cache]
        for passage in self.kb.store.get(missing):
            cache[passage.passage_id] = passage
        return {pid: cache[pid] for pid in passage_ids if pid in cache}

    @cached_property
    def _passage_cache(self) -> dict[str, Any]:
        return {}

    def unit_passages(self, unit: str) -> tuple[Passage, ...]:
        """Every stored passage of a unit (all documents, languages, versions), kept until the store changes (the
        keyword index's stamp): the provisions the best passages cite (Article 6, Annex I) recur in most answers,
        and each Chroma lookup of one costs 15-40 ms."""
        return self._unit_cache(self.kb.keywords.stamp, unit)

    @cached_property
    def _unit_cache(self) -> Any:
        @lru_cache(maxsize=512)
        def find(stamp: str, unit: str) -> tuple[Passage, ...]:
            return tuple(self.kb.store.find(Match(unit=unit)))

        return find

    def passage(self, passage_id: str) -> Passage:
        found = self.kb.store.get([passage_id])
        if not found:
            raise UnknownPassageError(passage_id)
        return found[0]

    def parallel_versions(self, passage: Passage) -> list[Passage]:
        """The same reference in the other languages (same version label where there is one)."""
        others = self.kb.store.find(Match(ref=passage.ref, not_language=passage.language))
        others.sort(key=lambda p: (p.version != passage.version, not p.in_force, p.language, p.piece))
        return others

    def neighbours(self, passage: Passage, before: int = 1, after: int = 1) -> list[Passage]:
        """The passages just before and after in the same text."""
        found = self.kb.store.find(
            Match(text_key=passage.text_key, order_from=passage.order - before, order_to=passage.order + after)
        )
        return sorted((p for p in found if p.passage_id != passage.passage_id), key=lambda p: p.order)

    def passages_for_ref(self, ref: str, language: str | None = None, in_force_only: bool = True) -> list[Passage]:
        """Every passage whose reference is `ref` or below it, in document order."""
        from kb.references import parse_reference

        parsed = parse_reference(ref)
        if not self.kb.is_built():
            raise NotBuiltError(str(self.kb.settings.data_dir))
        ids = [  # from the keyword index, the passages from the cache: not a whole act from Chroma
            r.passage_id
            for r in self.kb.keywords.rows
            if r.doc_id == parsed.doc_id
            and covers(ref, r.passage_id.partition("/")[0])
            and (not language or r.language == language)
            and (r.in_force or not in_force_only)
        ]
        found = self.passages_by_id(ids).values()
        return sorted(found, key=lambda p: (p.language, p.order))

    def cited_by(self, ref: str) -> list[str]:
        """References of the passages in force that cite `ref` or a reference below it (the reverse of `cites`),
        leaving out the provision's own parts citing each other."""
        stamp = self.kb.keywords.stamp
        cached = self.__dict__.get("_reverse_citations")
        if cached is None or cached[0] != stamp:  # rebuilt when the store changes (the keyword index follows it)
            reverse: dict[str, set[str]] = {}
            for passage in self.kb.store.find(Match(in_force=True, citing=True)):
                for cited in passage.cites:
                    reverse.setdefault(cited, set()).add(passage.ref)
            cached = self.__dict__["_reverse_citations"] = (stamp, reverse)
        citing = {c for cited, refs in cached[1].items() if covers(ref, cited) for c in refs}
        return sorted(c for c in citing if not covers(ref, c))

    def similar_in_other_documents(
        self, passages: list[Passage], k: int = 5, kinds: list[str] | None = None, language: str | None = None
    ) -> list[SearchHit]:
        """Provisions of other documents nearest in meaning to `passages` (a contract clause -> the provisions
        of law behind it), one hit per article or section, best first; shown in `language` where a version exists.

        The provision is the mean of its passages' stored vectors, in every language given: embedding its text
        as a query cut a long article short and tied the neighbours to the language shown (a Danish Article 26
        of the AI Act found NIS2's supervision articles, the English one the model contract's clauses on use).
        """
        if not passages or k <= 0:
            return []
        model = self.kb.embedder.model_name
        stored = self.kb.store.vectors_for_hashes(sorted({p.content_hash(model) for p in passages}))
        if not stored:  # passages that are not in the store have no neighbours in it either
            return []
        vector = np.mean(np.stack(list(stored.values())), axis=0)
        vector /= np.linalg.norm(vector) or 1.0
        own = passages[0].doc_id
        rows, row_of = self.kb.keywords.rows, self.kb.keywords.row_of

        pending = self.kb._keyword_state.get("pending") or {}

        def wanted(pid: str) -> bool:
            if pid in pending:  # a placeholder vector, not the passage's own
                return False
            row = rows[row_of[pid]] if pid in row_of else None
            return row is not None and row.in_force and row.doc_id != own and (not kinds or row.kind in kinds)

        # an over-fetch of 1,000 filtered from the keyword index's fields costs 10 ms; Chroma's own filter 100 ms.
        # Exact over the vectors in memory when the unit index holds them (the same in every build and mode)
        exact = None if pending else self.kb.retriever._dense_exact(vector, 1000, None, None, None, True)
        nearest = exact if exact is not None else self.kb.store.query(vector, 1000)
        chosen = _one_per_unit([(pid, s) for pid, s in nearest if wanted(pid)], k)
        if len(chosen) < k:  # too few articles left after the filter: let Chroma filter
            others = Match(not_doc_id=own, in_force=True, kind=tuple(kinds) if kinds else None)
            chosen = _one_per_unit(self.kb.store.query(vector, 10 * k, others), k)
        known = self.passages_by_id([pid for pid, _ in chosen])
        hits = [SearchHit(passage=known[pid], score=s, dense_score=s) for pid, s in chosen if pid in known]
        return self.kb.retriever._in_language(hits, language) if language else hits


def _one_per_unit(found: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """The first `k` (passage id, score) pairs of distinct articles or sections (`doc:unit`), in the order given."""
    chosen: list[tuple[str, float]] = []
    seen: set[str] = set()
    for pid, score in found:
        unit = pid.partition("/")[0].split(".")[0]
        if unit not in seen:
            seen.add(unit)
            chosen.append((pid, score))
            if len(chosen) == k:
                break
    return chosen
