"""The knowledge base object: one core that the CLI, the service and the evaluation call."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from typing import Any

import numpy as np
from pydantic import BaseModel

from kb.errors import InvalidFilterError, NotBuiltError, UnknownPassageError
from kb.keywords import IndexedRow, KeywordIndex
from kb.passage import Passage
from kb.retrieval import reciprocal_rank_fusion
from kb.settings import Settings
from kb.store import PassageStore, open_client


class SearchHit(BaseModel):
    """A passage found for a query, with its fused score and where each retriever ranked it."""

    passage: Passage
    score: float
    dense_rank: int | None = None
    keyword_rank: int | None = None

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

    # --- the parts, loaded once per process --------------------------------------

    @cached_property
    def embedder(self) -> Any:
        from kb.embedding import make_embedder

        return make_embedder(self.settings)

    @cached_property
    def store(self) -> PassageStore:
        client = open_client(self.settings.chroma_dir, self.settings.chroma_url)
        return PassageStore(client, _collection_name(self.embedder.model_name))

    @cached_property
    def _keyword_state(self) -> dict[str, Any]:
        return {"index": KeywordIndex.load(self.settings.bm25_dir), "catalog": self._read_catalog()}

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
        return self._keyword_state["index"] is not None and bool(self._keyword_state["index"].rows)

    # --- keeping the keyword index in step with the store ------------------------

    def store_fingerprint(self) -> str:
        """A hash of every passage id and content hash: changes whenever the store's contents do."""
        digest = hashlib.sha256()
        for pid, content_hash in sorted(self.store.hashes().items()):
            digest.update(f"{pid}\x00{content_hash}\n".encode())
        return digest.hexdigest()

    def refresh_keyword_index(self) -> bool:
        """Rebuild the BM25 index and catalog when they do not match the store; True when rebuilt."""
        fingerprint = self.store_fingerprint()
        current = self._keyword_state["index"]
        if current is not None and current.stamp == fingerprint and self._keyword_state["catalog"] is not None:
            return False
        rows: list[IndexedRow] = []
        texts: list[str] = []
        catalog: dict[str, Any] = {"documents": {}, "passages": 0}
        for passage in self.store.iter_passages():
            rows.append(IndexedRow(passage.passage_id, passage.doc_id, passage.language, passage.kind, passage.in_force))
            texts.append(passage.indexed_text)
            doc = catalog["documents"].setdefault(
                passage.doc_id,
                {"title": passage.title, "kind": passage.kind, "jurisdiction": passage.jurisdiction, "versions": {}, "passages": {}},
            )
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
        index = KeywordIndex.build(rows, texts, stamp=fingerprint)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings.data_dir / "catalog.json.tmp"
        tmp.write_text(json.dumps(catalog, ensure_ascii=False, indent=1))
        os.replace(tmp, self.settings.data_dir / "catalog.json")
        index.save(self.settings.bm25_dir)
        self._keyword_state.update(index=index, catalog=catalog)
        return True

    # --- reading ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """DESIGN's `kb stats` object: documents with title, versions and passages per language."""
        catalog = self.catalog
        return {
            "documents": {
                doc_id: {
                    "title": doc["title"],
                    "kind": doc["kind"],
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
        return _cached_query_vector(self.embedder, query)

    def search(
        self,
        query: str,
        k: int = 10,
        doc: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        in_force_only: bool = True,
    ) -> list[SearchHit]:
        """Hybrid search: dense and BM25 candidates, fused by reciprocal rank; best first."""
        if not self.is_built():
            raise NotBuiltError(str(self.settings.data_dir))
        self.check_filters(doc, kind, language)
        n = max(self.settings.candidates, k)
        conditions: list[dict[str, Any]] = []
        for name, value in (("doc_id", doc), ("kind", kind), ("language", language)):
            if value is not None:
                conditions.append({name: value})
        if in_force_only:
            conditions.append({"in_force": True})
        where = conditions[0] if len(conditions) == 1 else ({"$and": conditions} if conditions else None)
        dense = self.store.query(self.embed_query(query), n, where)
        keyword = self.keywords.search(query, n, self.keywords.mask(doc, kind, language, in_force_only))
        fused = reciprocal_rank_fusion(
            {"dense": [p.passage_id for p, _ in dense], "keyword": [pid for pid, _ in keyword]}, k=self.settings.rrf_k
        )[:k]
        known = {p.passage_id: p for p, _ in dense}
        missing = [f.passage_id for f in fused if f.passage_id not in known]
        known.update({p.passage_id: p for p in self.store.get(missing)})
        return [
            SearchHit(passage=known[f.passage_id], score=f.score, dense_rank=f.ranks["dense"], keyword_rank=f.ranks["keyword"])
            for f in fused
            if f.passage_id in known
        ]

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
        conditions: list[dict[str, Any]] = [{"doc_id": parsed.doc_id}]
        if language:
            conditions.append({"language": language})
        if in_force_only:
            conditions.append({"in_force": True})
        found = self.store.find({"$and": conditions})
        return sorted(
            (p for p in found if p.ref == ref or p.ref.startswith(ref + ".")), key=lambda p: (p.language, p.order)
        )


_QUERY_CACHE: dict[tuple[str, str], np.ndarray] = {}


def _cached_query_vector(embedder: Any, query: str) -> np.ndarray:
    """Query vectors cached per process: the same question (or eval rerun) embeds once."""
    key = (embedder.model_name, query)
    vector = _QUERY_CACHE.get(key)
    if vector is None:
        if len(_QUERY_CACHE) > 4096:
            _QUERY_CACHE.clear()
        vector = np.asarray(embedder.get_query_embedding(query), dtype=np.float32)
        _QUERY_CACHE[key] = vector
    return vector
