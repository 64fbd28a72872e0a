"""The knowledge base object: one core that the CLI, the service and the evaluation call."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel

from kb.answer import Answer, Citation, ScenarioInfo
from kb.errors import InvalidFilterError, InvalidQuestionError, NotBuiltError, UnknownPassageError
from kb.keywords import IndexedRow, KeywordIndex
from kb.passage import Passage
from kb.references import covers
from kb.retrieval import reciprocal_rank_fusion
from kb.scenarios import in_profile, profile_refs
from kb.settings import Settings
from kb.store import PassageStore, open_client
from kb.timing import stage

log = logging.getLogger(__name__)


class _Covered(NamedTuple):
    """The passages a profile covers: a mask over the keyword rows, and the rows with a stored vector with it."""

    rows: np.ndarray  # float32, 1.0 where covered
    indices: np.ndarray  # keyword row numbers of the covered passages with a stored vector
    vectors: np.ndarray  # their vectors, one row each


class SearchHit(BaseModel):
    """A passage found for a query, with its fused score and where each retriever ranked it."""

    passage: Passage
    score: float
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None
    keyword_score: float | None = None
    named: bool = False

    def summary(self) -> dict[str, Any]:
        """The DESIGN shape of a search result."""
        p = self.passage
        return {
            "ref": p.ref,
            "passage_id": p.passage_id,
            "doc_id": p.doc_id,
            "title": p.title,
            "heading": p.heading,
            "language": p.language,
            "version": p.version,
            "score": round(self.score, 6),
            "text": p.text,
        }


def _collection_name(model: str) -> str:
    """One Chroma collection per embedding model, so switching backends never mixes vector spaces."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in model.lower()).strip("-")
    return f"passages-{slug}"[:60].rstrip("-")


class KnowledgeBase:
    """Passages, their vectors and keyword index, and search over them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._reload_lock = threading.Lock()
        self._writer = threading.local()  # how deep this thread is in `writing()`

    # --- the parts, loaded once per process --------------------------------------

    @cached_property
    def embedder(self) -> Any:
        from kb.embedding import make_embedder

        return make_embedder(self.settings)

    @cached_property
    def store(self) -> PassageStore:
        """The Chroma store, opened on first use (a server that is down now is reached once it is back)."""
        s = self.settings
        return PassageStore(
            lambda: open_client(s.chroma_dir, s.chroma_url, s.chroma_timeout),
            _collection_name(self.embedder.model_name),
            location=s.chroma_url or str(s.chroma_dir),
        )

    @cached_property
    def _keyword_state(self) -> dict[str, Any]:
        return self._load_keyword_state()

    def _load_keyword_state(self) -> dict[str, Any]:
        # the stamp is read before the files: an ingest finishing meanwhile is picked up at the next check
        version = self._read_index_stamp()
        # a stamp with "+" says a build is still embedding: which passages have no vector yet (dense skips them)
        pending = self.store.pending() if PENDING_MARK in version else {}
        return {
            "index": KeywordIndex.load(self.settings.bm25_dir),
            "catalog": self._read_catalog(),
            "version": version,
            "pending": pending,
        }

    def _read_index_stamp(self) -> str:
        try:
            return self.settings.index_stamp_file.read_text().strip()
        except FileNotFoundError:
            return ""

    @property
    def index_version(self) -> str:
        """The stamp of the keyword index and catalog this process answers from (the store fingerprint)."""
        return self._keyword_state["version"]

    def reload_if_changed(self) -> bool:
        """Load the keyword index and catalog again when an ingest (any process) has rebuilt them; True if it did.

        Service workers keep both read-only in memory and call this once per request: it costs one read of
        a 64-byte stamp file, which each rebuild writes last and atomically. Never a timer, never a rebuild
        here. The embedded Chroma client is reopened too: it keeps its vector index in memory and would not
        see another process's writes (a Chroma server needs no such step).
        """
        if "_keyword_state" not in self.__dict__:
            return False  # nothing loaded yet: the first use loads the current files
        if self._read_index_stamp() == self._keyword_state["version"]:
            return False
        with self._reload_lock:
            if self._read_index_stamp() == self._keyword_state["version"]:
                return False  # another thread of this process got there first
            if not self.settings.chroma_url and "store" in self.__dict__:
                self.store.reopen()  # first: the pending passages are read from the store as it is now
            state = self._load_keyword_state()
            if state["index"] is None and state["version"]:
                return False  # caught between the renames of a later rebuild: keep answering, look again next time
            self.__dict__["_keyword_state"] = state
        return True

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Be the only writer of passages: a corpus ingest, an upload or a removal, in any thread or process.

        Two writers at once would lose work: an embedded Chroma client keeps its vector index in memory and
        would write over another process's additions, and the keyword index rebuilt last would miss the other
        writer's passages. So every writer holds an flock on data_dir/.write.lock (the kernel releases it if
        the holder dies), says on the log when it has to wait, and on getting it first catches up with what
        the writer before it stored. Re-entrant within a thread. Readers never wait.
        """
        depth = getattr(self._writer, "depth", 0)
        if depth:
            self._writer.depth = depth + 1
            try:
                yield
            finally:
                self._writer.depth = depth
            return
        path = self.settings.write_lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("waiting for another writer of the knowledge base to finish (%s is locked)", path)
                fcntl.flock(handle, fcntl.LOCK_EX)
            self._writer.depth = 1
            try:
                self.reload_if_changed()  # the embedded store reopened if the writer before us changed it
                yield
            finally:
                self._writer.depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def not_embedded(self) -> list[str]:
        """The texts (doc/language/version) with passages that have no vector yet, while a build embeds them: those
        passages are found by keyword search only. Empty once the build is done."""
        self.reload_if_changed()
        return sorted(set(self._keyword_state.get("pending", {}).values()))

    def check_store(self) -> int:
        """The number of passages in the store: proof it answers (StoreUnavailableError when it does not)."""
        return self.store.count()

    @property
    def keywords(self) -> KeywordIndex:
        index = self._keyword_state["index"]
        if index is None:
            raise NotBuiltError(str(self.settings.data_dir))
        return index

    @property
    def catalog(self) -> dict[str, Any]:
        """Documents, versions and passage counts, written with the keyword index."""
        catalog = self._keyword_state["catalog"]
        if catalog is None:
            raise NotBuiltError(str(self.settings.data_dir))
        return catalog

    def _read_catalog(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.settings.data_dir / "catalog.json").read_text())
        except FileNotFoundError:
            return None

    def is_built(self) -> bool:
        """Whether there is a keyword index to answer from; picks up a newer one first (`reload_if_changed`)."""
        self.reload_if_changed()
        return self._keyword_state["index"] is not None and bool(self._keyword_state["index"].rows)

    # --- keeping the keyword index in step with the store ------------------------

    def store_fingerprint(self) -> str:
        """A hash of every passage id and content hash (and the keyword index's format): changes whenever the
        store's contents do."""
        digest = hashlib.sha256(KEYWORD_INDEX_FORMAT.encode())
        for pid, content_hash in sorted(self.store.hashes().items()):
            digest.update(f"{pid}\x00{content_hash}\n".encode())
        return digest.hexdigest()

    def refresh_keyword_index(self) -> bool:
        """Rebuild the BM25 index and catalog when they do not match the store; True when rebuilt."""
        fingerprint = self.store_fingerprint()
        current = self._keyword_state["index"]
        if current is not None and current.stamp == fingerprint and self._keyword_state["catalog"] is not None:
            # the passages are the same; their vectors may not be (a build embeds text by text): a new stamp then
            self._write_index_stamp(fingerprint)
            return False
        rows: list[IndexedRow] = []
        texts: list[str] = []
        catalog: dict[str, Any] = {"documents": {}, "passages": 0}
        for passage in self.store.iter_passages():
            rows.append(IndexedRow(passage.passage_id, passage.doc_id, passage.language, passage.kind, passage.in_force))
            texts.append(passage.indexed_text)
            doc = catalog["documents"].setdefault(
                passage.doc_id,
                {
                    "title": passage.title,
                    "kind": passage.kind,
                    "jurisdiction": passage.jurisdiction,
                    "origin": passage.origin,
                    "scenarios": [],
                    "versions": {},
                    "passages": {},
                },
            )
            doc["scenarios"].extend(s for s in passage.scenarios if s not in doc["scenarios"])
            version = doc["versions"].setdefault(
                passage.version,
                {"version": passage.version, "valid_from": str(passage.valid_from or ""), "in_force": passage.in_force, "languages": []},
            )
            if passage.language not in version["languages"]:
                version["languages"].append(passage.language)
            doc["passages"][passage.language] = doc["passages"].get(passage.language, 0) + 1
            catalog["passages"] += 1
        for doc in catalog["documents"].values():
            doc["versions"] = sorted(doc["versions"].values(), key=lambda v: v["valid_from"], reverse=True)
        from kb.lexicon import learn_lexicon

        by_ref: dict[tuple[str, str], dict[str, str]] = {}  # (ref, version and piece) -> language -> text
        for row, text in zip(rows, texts, strict=True):
            ref, _, rest = row.passage_id.partition("/")
            by_ref.setdefault((ref, rest.split("/", 1)[-1]), {})[row.language] = text
        pairs = [(v["da"], v["en"]) for v in by_ref.values() if "da" in v and "en" in v]
        index = KeywordIndex.build(rows, texts, stamp=fingerprint, lexicon=learn_lexicon(pairs))
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings.data_dir / "catalog.json.tmp"
        tmp.write_text(json.dumps(catalog, ensure_ascii=False, indent=1))
        os.replace(tmp, self.settings.data_dir / "catalog.json")
        index.save(self.settings.bm25_dir)
        self._keyword_state.update(index=index, catalog=catalog, version=fingerprint)
        self._write_index_stamp(fingerprint)  # last: a worker that sees it finds the index and catalog in place
        return True

    def _write_index_stamp(self, fingerprint: str) -> None:
        """The store fingerprint, and while passages wait for their vectors "+" and a hash of which: every text
        a build embeds changes the stamp, so workers reload (and reopen an embedded store) to see its vectors."""
        pending = self.store.pending()
        stamp = fingerprint
        if pending:
            stamp += PENDING_MARK + hashlib.sha256("\n".join(sorted(pending)).encode()).hexdigest()[:16]
        self._keyword_state.update(version=stamp, pending=pending)
        path = self.settings.index_stamp_file
        if self._read_index_stamp() == stamp:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(stamp + "\n")
        os.replace(tmp, path)

    # --- reading ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """DESIGN's `kb stats` object: documents with title, versions and passages per language."""
        catalog = self.catalog
        return {
            "documents": {
                doc_id: {
                    "title": doc["title"],
                    "kind": doc["kind"],
                    "origin": doc.get("origin", "corpus"),
                    "versions": doc["versions"],
                    "passages": doc["passages"],
                }
                for doc_id, doc in sorted(catalog["documents"].items())
            },
            "passages": catalog["passages"],
        }

    def check_filters(self, doc: str | None = None, kind: str | None = None, language: str | None = None) -> None:
        """Raise InvalidFilterError when a filter names something the knowledge base does not hold."""
        documents = self.catalog["documents"]
        if doc is not None and doc not in documents:
            raise InvalidFilterError("doc", doc, sorted(documents))
        kinds = sorted({d["kind"] for d in documents.values()})
        if kind is not None and kind not in kinds:
            raise InvalidFilterError("kind", kind, kinds)
        languages = sorted({lang for d in documents.values() for lang in d["passages"]})
        if language is not None and language not in languages:
            raise InvalidFilterError("language", language, languages)

    def embed_query(self, query: str) -> np.ndarray:
        with stage("embed"):
            return self._query_vectors(query)

    @cached_property
    def _query_vectors(self) -> Any:
        """Query vectors cached per knowledge base: the same question (or an eval rerun) embeds once."""

        @lru_cache(maxsize=4096)
        def embed(query: str) -> np.ndarray:
            return np.asarray(self.embedder.get_query_embedding(query), dtype=np.float32)

        return embed

    def search(
        self,
        query: str,
        k: int = 10,
        doc: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        in_force_only: bool = True,
        named: bool = True,
        mode: str = "hybrid",
        within: list[str] | None = None,
    ) -> list[SearchHit]:
        """Hybrid search: dense and BM25 candidates fused by reciprocal rank, named provisions first; best first.

        `mode` "dense" or "keyword" uses one retriever alone (the baselines the evaluation compares with).
        `within` (a scenario's profile, `scenario_profile`) searches only the passages its entries cover: filtering
        the best candidates of the whole corpus afterwards would leave a handful, or none.
        """
        if not self.is_built():
            raise NotBuiltError(str(self.settings.data_dir))
        self.check_filters(doc, kind, language)
        n = max(self.settings.candidates, k)
        if mode not in ("hybrid", "dense", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        covered = self._covered(tuple(within)) if within is not None else None
        if covered is not None and not covered.rows.any():
            return []
        with stage("dense"):
            dense = self._dense(query, n, doc, kind, language, in_force_only, covered) if mode != "keyword" else []
        with stage("bm25"):
            mask = self._mask(doc, kind, language, in_force_only, covered)
            keyword = self.keywords.search(query, n, mask) if mode != "dense" else []
            lists = {"dense": [pid for pid, _ in dense], "keyword": [pid for pid, _ in keyword]}
            if mode == "hybrid":
                lists["translated"] = self._translated_keywords(query, n, doc, kind, language, in_force_only, covered)
        with stage("fusion"):
            fused = reciprocal_rank_fusion(
                lists,
                k=self.settings.rrf_k,
                weights={"dense": self.settings.dense_weight, "translated": self.settings.translated_weight},
            )[: max(k, 20)]
        similarity = dict(dense)
        bm25 = dict(keyword)
        with stage("fetch"):
            known = self._passages_by_id([f.passage_id for f in fused])
        hits = [
            SearchHit(
                passage=known[f.passage_id],
                score=f.score,
                dense_rank=f.ranks["dense"],
                keyword_rank=f.ranks["keyword"],
                dense_score=similarity.get(f.passage_id),
                keyword_score=bm25.get(f.passage_id),
            )
            for f in fused
            if f.passage_id in known
        ]
        if named:
            with stage("provisions"):
                hits = self._definitions_first(query, hits)
                hits = self._named_first(query, hits, doc=doc, kind=kind, language=language, in_force_only=in_force_only)
            if within is not None:  # a named provision outside the profile is not within it
                hits = [h for h in hits if in_profile(within, h.passage.ref)]
        return hits[:k]

    def _covered(self, entries: tuple[str, ...]) -> _Covered:
        """The passages profile entries cover, with their stored vectors; kept until the store changes (the keyword
        index's stamp), since a scenario's profile is searched again and again. A profile holds a few hundred
        passages: scoring them all here costs under a millisecond, where a Chroma query filtered to their
        references cost 60-100 ms."""
        return self._covered_cache(self.index_version, entries)  # the whole stamp: vectors land text by text

    @cached_property
    def _covered_cache(self) -> Any:
        @lru_cache(maxsize=32)
        def covered(stamp: str, entries: tuple[str, ...]) -> _Covered:
            profile = list(entries)
            rows = self.keywords.rows
            mask = np.array([in_profile(profile, r.passage_id.partition("/")[0]) for r in rows], dtype=np.float32)
            candidates = np.flatnonzero(mask)
            stored = self.store.vectors([rows[i].passage_id for i in candidates])
            indices = np.array([i for i in candidates if rows[i].passage_id in stored], dtype=np.int64)
            vectors = np.stack([stored[rows[i].passage_id] for i in indices]) if len(indices) else np.zeros((0, 1))
            return _Covered(mask, indices, vectors.astype(np.float32))

        return covered

    def _mask(
        self, doc: str | None, kind: str | None, language: str | None, in_force_only: bool, covered: _Covered | None
    ) -> np.ndarray:
        """The keyword index's filter mask, narrowed to the covered passages when searching within a profile."""
        mask = self.keywords.mask(doc, kind, language, in_force_only)
        return mask * covered.rows if covered is not None else mask

    def _definitions_first(self, query: str, hits: list[SearchHit]) -> list[SearchHit]:
        """For "what is a deployer?", the definition of that term among the candidates comes first."""
        from kb.keywords import tokenize, tokenize_query
        from kb.provisions import asks_for_definition, defined_term

        if not asks_for_definition(query):
            return hits
        words = set(tokenize_query(query))
        matching = []
        for hit in hits:
            term = defined_term(hit.passage.text)
            if term and set(tokenize(term, hit.passage.language)) <= words:
                matching.append(hit)
        if not matching:
            return hits
        top = hits[0].score
        for i, hit in enumerate(matching):
            hit.score = top + 0.5 / (i + 1)
        return matching + [h for h in hits if h not in matching]

    def _translated_keywords(
        self,
        query: str,
        n: int,
        doc: str | None,
        kind: str | None,
        language: str | None,
        in_force_only: bool,
        covered: _Covered | None = None,
    ) -> list[str]:
        """BM25 over the other language's passages with the question translated by the learnt lexicon:
        a Danish question's way into English-only texts (MDR, EHDS), an English one's into the Danish acts."""
        from kb.language import detect_language

        source = detect_language(query)
        target = "en" if source == "da" else "da"
        if language not in (None, target):
            return []
        tokens = self.keywords.translated_tokens(query, source)
        if not tokens:
            return []
        mask = self._mask(doc, kind, target, in_force_only, covered)
        return [pid for pid, _ in self.keywords.search(query, n, mask, tokens=tokens)]

    def _dense(
        self,
        query: str,
        n: int,
        doc: str | None,
        kind: str | None,
        language: str | None,
        in_force_only: bool,
        covered: _Covered | None = None,
    ) -> list[tuple[str, float]]:
        """Dense candidates (id, similarity). Filters are applied from the keyword index's fields after an
        over-fetch, since a filtered Chroma query costs several times an unfiltered one; a narrow filter
        (doc, kind, language) that would starve the over-fetch goes to Chroma as a where clause. Within a profile
        every `covered` passage is scored exactly, from its stored vector."""
        vector = self.embed_query(query)
        pending = self._keyword_state.get("pending")
        if pending:  # a build is embedding: the passages still waiting hold placeholders, never dense hits
            return [hit for hit in self._dense_stored(vector, n, doc, kind, language, in_force_only, covered) if hit[0] not in pending]
        return self._dense_stored(vector, n, doc, kind, language, in_force_only, covered)

    def _dense_stored(
        self,
        vector: np.ndarray,
        n: int,
        doc: str | None,
        kind: str | None,
        language: str | None,
        in_force_only: bool,
        covered: _Covered | None,
    ) -> list[tuple[str, float]]:
        if covered is not None:
            keep = self.keywords.mask(doc, kind, language, in_force_only)[covered.indices] > 0
            scores = covered.vectors[keep] @ vector if keep.any() else np.zeros(0, np.float32)
            rows = self.keywords.rows
            found = [(rows[i].passage_id, float(score)) for i, score in zip(covered.indices[keep], scores, strict=True)]
            return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:n]
        if doc is None and kind is None and language is None:
            found = self.store.query(vector, 2 * n)
            kept = [(pid, s) for pid, s in found if self.keywords.passes(pid, None, None, None, in_force_only)]
            if len(kept) >= n or len(found) < 2 * n:
                return kept[:n]
        conditions: list[dict[str, Any]] = []
        for name, value in (("doc_id", doc), ("kind", kind), ("language", language)):
            if value is not None:
                conditions.append({name: value})
        if in_force_only:
            conditions.append({"in_force": True})
        where = conditions[0] if len(conditions) == 1 else ({"$and": conditions} if conditions else None)
        return self.store.query(vector, n, where)

    def _named_first(
        self, query: str, hits: list[SearchHit], doc: str | None, kind: str | None, language: str | None, in_force_only: bool
    ) -> list[SearchHit]:
        """Put the provisions the query names ("artikel 26", "§ 73", "Annex VIII rule 11") ahead of the rest."""
        from kb.language import detect_language
        from kb.provisions import named_provisions

        provisions = named_provisions(query)
        if not provisions:
            return hits
        preferred = language or detect_language(query)
        top = hits[0].score if hits else 1.0
        rank = {h.passage.passage_id: i for i, h in enumerate(hits)}
        front: list[SearchHit] = []
        for provision in provisions:
            found = self.provision_passages(
                provision, preferred, doc=doc, kind=kind, language=language, in_force_only=in_force_only, limit=30
            )
            # the named provision's passages that the search itself ranks best come first; at most three in front
            found.sort(key=lambda p: (rank.get(p.passage_id, len(hits)), p.order))
            for passage in found[:3]:
                if all(h.passage.passage_id != passage.passage_id for h in front):
                    front.append(SearchHit(passage=passage, score=top + 1.0 / (len(front) + 1), named=True))
        seen = {h.passage.passage_id for h in front}
        return front + [h for h in hits if h.passage.passage_id not in seen]

    def provision_passages(
        self,
        provision: Any,
        preferred_language: str,
        doc: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        in_force_only: bool = True,
        limit: int = 4,
    ) -> list[Passage]:
        """The passages of a named provision, in document order, in the preferred language where it exists."""
        unit = provision.locator.split(".")[0]
        doc_ids = [d for d in (provision.doc_ids or ()) if doc is None or d == doc] or ([doc] if doc else [])
        # Chroma intersects every condition's full match set, so a broad one (in_force: 9,583 rows) costs 40 ms;
        # the unit alone is selective: ask for it and filter the rest here
        found = self._unit_passages(unit)
        target = f"x:{provision.locator}"
        found = [
            p
            for p in found
            if covers(target, f"x:{p.locator}")
            and (not doc_ids or p.doc_id in doc_ids)
            and kind in (None, p.kind)
            and language in (None, p.language)
            and (p.in_force or not in_force_only)
        ]
        if provision.rule is not None:
            found = [p for p in found if re.match(rf"\s*(?:Rule|Regel)\s+{provision.rule}\b", p.text)]
        if not found:
            return []
        if not doc_ids:  # "artikel 26" with no act named: the act whose provision fits the language best
            by_doc: dict[str, list[Passage]] = {}
            for p in found:
                by_doc.setdefault(p.doc_id, []).append(p)
            ranked_docs = sorted(by_doc, key=lambda d: (all(p.language != preferred_language for p in by_doc[d]), d != "ai-act", d))
            found = by_doc[ranked_docs[0]]
        languages = {p.language for p in found}
        chosen = preferred_language if preferred_language in languages else sorted(languages)[0]
        return sorted((p for p in found if p.language == chosen), key=lambda p: p.order)[:limit]

    def _passages_by_id(self, passage_ids: list[str]) -> dict[str, Passage]:
        """The passages with these ids, from a cache kept until the store changes (the keyword index's stamp), the rest
        from Chroma: fetching 20 passages' text and metadata costs 6-9 ms, and the same passages come up again and again."""
        cache = self._passage_cache
        if cache.get("\x00stamp") != self.keywords.stamp or len(cache) > 50_000:
            cache.clear()
            cache["\x00stamp"] = self.keywords.stamp
        missing = [pid for pid in passage_ids if pid not in cache]
        for passage in self.store.get(missing):
            cache[passage.passage_id] = passage
        return {pid: cache[pid] for pid in passage_ids if pid in cache}

    @cached_property
    def _passage_cache(self) -> dict[str, Any]:
        return {}

    def _unit_passages(self, unit: str) -> tuple[Passage, ...]:
        """Every stored passage of a unit (all documents, languages, versions), kept until the store changes (the
        keyword index's stamp): the provisions the best passages cite (Article 6, Annex I) recur in most answers,
        and each Chroma lookup of one costs 15-40 ms."""
        return self._unit_cache(self.keywords.stamp, unit)

    @cached_property
    def _unit_cache(self) -> Any:
        @lru_cache(maxsize=512)
        def find(stamp: str, unit: str) -> tuple[Passage, ...]:
            return tuple(self.store.find({"unit": unit}))

        return find

    def passage(self, passage_id: str) -> Passage:
        found = self.store.get([passage_id])
        if not found:
            raise UnknownPassageError(passage_id)
        return found[0]

    def parallel_versions(self, passage: Passage) -> list[Passage]:
        """The same reference in the other languages (same version label where there is one)."""
        others = self.store.find({"$and": [{"ref": passage.ref}, {"language": {"$ne": passage.language}}]})
        others.sort(key=lambda p: (p.version != passage.version, not p.in_force, p.language, p.piece))
        return others

    def neighbours(self, passage: Passage, before: int = 1, after: int = 1) -> list[Passage]:
        """The passages just before and after in the same text."""
        found = self.store.find(
            {
                "$and": [
                    {"text_key": passage.text_key},
                    {"order": {"$gte": passage.order - before}},
                    {"order": {"$lte": passage.order + after}},
                ]
            }
        )
        return sorted((p for p in found if p.passage_id != passage.passage_id), key=lambda p: p.order)

    def passages_for_ref(self, ref: str, language: str | None = None, in_force_only: bool = True) -> list[Passage]:
        """Every passage whose reference is `ref` or below it, in document order."""
        from kb.references import parse_reference

        parsed = parse_reference(ref)
        if not self.is_built():
            raise NotBuiltError(str(self.settings.data_dir))
        ids = [  # from the keyword index, the passages from the cache: not a whole act from Chroma
            r.passage_id
            for r in self.keywords.rows
            if r.doc_id == parsed.doc_id
            and covers(ref, r.passage_id.partition("/")[0])
            and (not language or r.language == language)
            and (r.in_force or not in_force_only)
        ]
        found = self._passages_by_id(ids).values()
        return sorted(found, key=lambda p: (p.language, p.order))

    def cited_by(self, ref: str) -> list[str]:
        """References of the passages in force that cite `ref` or a reference below it (the reverse of `cites`),
        leaving out the provision's own parts citing each other."""
        stamp = self.keywords.stamp
        cached = self.__dict__.get("_reverse_citations")
        if cached is None or cached[0] != stamp:  # rebuilt when the store changes (the keyword index follows it)
            reverse: dict[str, set[str]] = {}
            for passage in self.store.find({"$and": [{"cites": {"$ne": ""}}, {"in_force": True}]}):
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
        model = self.embedder.model_name
        stored = self.store.vectors_for_hashes(sorted({p.content_hash(model) for p in passages}))
        if not stored:  # passages that are not in the store have no neighbours in it either
            return []
        vector = np.mean(np.stack(list(stored.values())), axis=0)
        vector /= np.linalg.norm(vector) or 1.0
        own = passages[0].doc_id
        rows, row_of = self.keywords.rows, self.keywords.row_of
        pending = self._keyword_state.get("pending") or {}

        def wanted(pid: str) -> bool:
            if pid in pending:
                return False
            row = rows[row_of[pid]] if pid in row_of else None
            return row is not None and row.in_force and row.doc_id != own and (not kinds or row.kind in kinds)

        # an over-fetch of 1,000 filtered from the keyword index's fields costs 10 ms; Chroma's own filter 100 ms
        chosen = _one_per_unit([(pid, s) for pid, s in self.store.query(vector, 1000) if wanted(pid)], k)
        if len(chosen) < k:  # too few articles left after the filter: let Chroma filter
            conditions: list[dict[str, Any]] = [{"doc_id": {"$ne": own}}, {"in_force": True}]
            if kinds:
                conditions.append({"kind": {"$in": kinds}})
            chosen = _one_per_unit(self.store.query(vector, 10 * k, {"$and": conditions}), k)
        known = self._passages_by_id([pid for pid, _ in chosen])
        hits = [SearchHit(passage=known[pid], score=s, dense_score=s) for pid, s in chosen if pid in known]
        return self._in_language(hits, language) if language else hits

    # --- answering ------------------------------------------------------------------

    def idf(self, token: str) -> float:
        """Inverse document frequency of a stemmed token in the keyword index (rare words weigh more)."""
        return self.keywords.idf(token)

    def scenario_profile(self, scenario_id: str) -> list[str]:
        """What matters in a scenario: the organisation's own documents tagged with it at upload (as bare doc ids,
        first: the organisation said so), then the profile's provisions (kb/data/scenarios.yaml)."""
        tagged = sorted(d for d, doc in self.catalog["documents"].items() if scenario_id in doc.get("scenarios", []))
        return tagged + profile_refs(scenario_id)

    def retrieve(
        self,
        question: str,
        language: str,
        profile: list[str],
        k: int = 8,
        doc: str | None = None,
        kind: str | None = None,
        as_of: date | None = None,
    ) -> list[SearchHit]:
        """Evidence for a question: hybrid hits, named provisions first, the scenario's provisions boosted,
        passages swapped to the question's language where a parallel version exists, and the provisions the
        best passages cite brought within reach."""
        hits = self.search(question, k=40, doc=doc, kind=kind, in_force_only=as_of is None)
        if as_of is not None:
            hits = [h for h in hits if self._valid_on(h.passage, as_of)]
        from kb.provisions import acts_named

        acts = set(acts_named(question))
        for hit in hits:
            if hit.named:
                continue
            if in_profile(profile, hit.passage.ref):
                hit.score += self.settings.scenario_boost
            if hit.passage.doc_id in acts:  # "Does NIS2 require ...": the act the question names
                hit.score += self.settings.act_boost
        hits.sort(key=lambda h: -h.score)
        with stage("provisions"):
            hits = self._in_language(hits, language)
            hits = hits[:k]
            return hits + self._cited_by(hits[:3], language, k=3, as_of=as_of)

    def _valid_on(self, passage: Passage, as_of: date) -> bool:
        """True when the passage's version is the one that applied on `as_of` (latest valid_from not after it)."""
        versions = self.catalog["documents"].get(passage.doc_id, {}).get("versions", [])
        applicable = [v for v in versions if v["valid_from"] and v["valid_from"] <= as_of.isoformat() and passage.language in v["languages"]]
        if not applicable:
            return False
        return max(applicable, key=lambda v: v["valid_from"])["version"] == passage.version

    def _in_language(self, hits: list[SearchHit], language: str) -> list[SearchHit]:
        """Replace each hit by its parallel version in `language` where one exists; one hit per reference."""
        foreign = [h.passage.ref for h in hits if h.passage.language != language]
        parallel: dict[tuple[str, str, int], Passage] = {}
        if foreign:
            for p in self.store.find({"ref": {"$in": sorted(set(foreign))}}):  # the language filtered here: cheaper
                if p.language == language:
                    parallel[(p.ref, p.version, p.piece)] = p
        out: list[SearchHit] = []
        seen: set[tuple[str, str, int]] = set()
        for hit in hits:
            p = hit.passage
            swap = parallel.get((p.ref, p.version, p.piece)) if p.language != language else None
            if swap is not None:
                hit = hit.model_copy(update={"passage": swap})
            key = (hit.passage.ref, hit.passage.version, hit.passage.piece)
            if key not in seen:
                seen.add(key)
                out.append(hit)
        return out

    def _cited_by(self, hits: list[SearchHit], language: str, k: int, as_of: date | None) -> list[SearchHit]:
        """The first passage of each provision the best hits cite (Article 26 -> Article 6(2), Annex III)."""
        from kb.provisions import NamedProvision

        have = {h.passage.ref for h in hits}
        out: list[SearchHit] = []
        floor = min((h.score for h in hits), default=0.0)
        for hit in hits:
            for ref in hit.passage.cites:
                if len(out) >= k or ref in have:
                    continue
                doc_id, _, locator = ref.partition(":")
                found = self.provision_passages(
                    NamedProvision(locator, (doc_id,)), language, in_force_only=as_of is None, limit=1
                )
                for passage in found:
                    if passage.ref not in have:
                        have.add(passage.ref)
                        out.append(SearchHit(passage=passage, score=floor * 0.9))
        return out

    def ask(
        self,
        question: str,
        scenario: str | None = None,
        language: str | None = None,
        top_k: int = 8,
        as_of: date | None = None,
    ) -> Answer:
        """A cited answer tied to a scenario, or a plain refusal with the nearest passages."""
        from kb.abstention import load_model
        from kb.answering import Composition, Evidence, compose, declined_text
        from kb.language import detect_language

        question = check_question(question)
        language = check_language(language) or detect_language(question)
        with stage("scenario"):
            info = self.scenario_for(question, scenario, language)
        profile = self.scenario_profile(info.id)
        hits, evidence_signals = self.gather_evidence(question, language, profile, top_k=top_k, as_of=as_of)
        named = any(h.named for h in hits)
        with stage("abstention"):
            declines = not hits or (not named and load_model(self.abstention_model_path).should_decline(evidence_signals))
        if declines:
            see_also = [Citation.of(i, h.passage, h.score) for i, h in enumerate(hits[:3], 1)]
            return Answer(
                question=question,
                answer=declined_text(language, see_also),
                language=language,
                scenario=info,
                citations=[],
                abstained=True,
                see_also=see_also,
                **self._partial(),
            )
        evidence = [
            Evidence(h.passage, h.score, rank, named=h.named, in_profile=in_profile(profile, h.passage.ref))
            for rank, h in enumerate(hits)
        ]

        def extractive() -> Composition:
            return compose(question, language, evidence, info.label, profile, self.idf)

        with stage("compose"):
            if self.generator is not None:
                composition, generator_name = self.generator.answer(question, language, evidence, info.label, extractive)
            else:
                composition, generator_name = extractive(), "extractive"
        return Answer(
            question=question,
            answer=composition.text,
            language=language,
            scenario=info,
            citations=composition.citations,
            abstained=False,
            sentences=composition.sentences,
            generator=generator_name,
            **self._partial(),
        )

    def _partial(self) -> dict[str, Any]:
        """An answer's `partial` and `not_embedded` while a build is embedding (keyword search only for those texts)."""
        missing = sorted(set((self._keyword_state.get("pending") or {}).values()))
        return {"partial": bool(missing), "not_embedded": missing}

    def gather_evidence(
        self, question: str, language: str, profile: list[str], top_k: int = 8, as_of: date | None = None
    ) -> tuple[list[SearchHit], Any]:
        """The evidence for a question and the signals the decision to answer or decline looks at."""
        from kb.abstention import signals

        hits = self.retrieve(question, language, profile, k=top_k, as_of=as_of)
        dense_scores = [h.dense_score for h in hits if h.dense_score is not None]
        pending = self._keyword_state.get("pending")
        if pending and any(h.passage.passage_id in pending for h in hits[:3]):
            from kb.abstention import load_model

            # while a build embeds, the best evidence may have no vector yet: its similarity is unknown, not low,
            # so the decision sees the calibration's mean similarity for it
            dense_scores.append(load_model(self.abstention_model_path).mean[0])
        with stage("abstention"):
            evidence_signals = signals(
                question,
                [(h.passage.indexed_text, h.passage.language) for h in hits[:3]],
                dense_scores=dense_scores,
                keyword_scores=[h.keyword_score for h in hits if h.keyword_score is not None],
                idf=self.idf,
            )
        return hits, evidence_signals

    def scenario_for(self, question: str, scenario: str | None, language: str) -> ScenarioInfo:
        """The scenario the user chose, or the one inferred from the question with its confidence and cues."""
        from kb.scenarios import SCENARIO_IDS, scenario_label

        if scenario is not None:
            if scenario not in SCENARIO_IDS:
                raise InvalidFilterError("scenario", scenario, list(SCENARIO_IDS))
            reason = "valgt af brugeren" if language == "da" else "chosen by the user"
            return ScenarioInfo(id=scenario, label=scenario_label(scenario, language), confidence=1.0, inferred=False, reason=reason)
        guess = self.router.predict(question, language)
        return ScenarioInfo(
            id=guess.scenario,
            label=scenario_label(guess.scenario, language),
            confidence=round(float(guess.confidence), 3),
            inferred=True,
            reason=guess.reason,
        )

    @property
    def abstention_model_path(self) -> Path:
        """The abstention model calibrated for this knowledge base (data dir), else the one shipped for the full corpus."""
        from kb.abstention import MODEL_FILE

        own = self.settings.data_dir / "abstention.json"
        return own if own.exists() else MODEL_FILE

    @cached_property
    def generator(self) -> Any:
        """The optional LLM answerer (KB_LLM_URL), or None: extractive only."""
        from kb.generator import GeneratedAnswerer

        return GeneratedAnswerer.from_settings()

    @cached_property
    def router(self) -> Any:
        from kb.routing import ScenarioRouter

        return ScenarioRouter()


MAX_QUESTION_CHARS = 2000


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


PENDING_MARK = "+"  # in the index stamp: passages still wait for their vectors
KEYWORD_INDEX_FORMAT = "2"  # a change here rebuilds every keyword index (2: with the learnt lexicon)
LANGUAGES = ("da", "en")


def check_question(question: str) -> str:
    """The question stripped; InvalidQuestionError when it is empty or too long."""
    text = (question or "").strip()
    if not text:
        raise InvalidQuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return text


def check_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise InvalidFilterError("language", language, list(LANGUAGES))
    return language
