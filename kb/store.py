"""The passage store: Chroma (embedded or a `chroma run` server) behind llama-index's `ChromaVectorStore`.

We hand Chroma our own vectors, so its default embedding function (which
would download a model) is never used; telemetry is off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kb.passage import Passage

COLLECTION = "passages"
_PAGE = 5000


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def open_client(chroma_dir: Path, chroma_url: str | None) -> Any:
    """An embedded `PersistentClient` in `chroma_dir`, or an `HttpClient` when a server URL is set."""
    import chromadb

    if chroma_url:
        from urllib.parse import urlparse

        url = urlparse(chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or 8000,
            ssl=url.scheme == "https",
            settings=_chroma_settings(),
        )
    chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_dir), settings=_chroma_settings())


class PassageStore:
    """Passages with their vectors; the one place that talks to Chroma."""

    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.client = client
        self.collection = client.get_or_create_collection(
            collection, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        self.vector_store = ChromaVectorStore(chroma_collection=self.collection)

    # --- what is there -----------------------------------------------------------

    def count(self) -> int:
        return self.collection.count()

    @property
    def embedding_model(self) -> str | None:
        """The embedding model the store was built with (None while empty)."""
        return (self.collection.metadata or {}).get("embedding_model")

    def set_embedding_model(self, model: str) -> None:
        metadata = dict(self.collection.metadata or {})
        if metadata.get("embedding_model") != model:
            metadata["embedding_model"] = model
            metadata.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
            self.collection.modify(metadata=metadata)

    def hashes(self, where: dict[str, Any] | None = None) -> dict[str, str]:
        """Passage id -> record hash of every stored passage (matching `where`)."""
        out: dict[str, str] = {}
        for batch in self._pages(where=where, include=["metadatas"]):
            for pid, meta in zip(batch["ids"], batch["metadatas"], strict=True):
                out[pid] = (meta or {}).get("record_hash", "")
        return out

    def vectors_for_hashes(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by content hash, so identical text (another version, a rerun) is not embedded again."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            result = self.collection.get(where={"content_hash": {"$in": chunk}}, include=["metadatas", "embeddings"])
            for meta, vector in zip(result["metadatas"], result["embeddings"], strict=True):
                found[meta["content_hash"]] = np.asarray(vector, dtype=np.float32)
        return found

    def iter_passages(self, where: dict[str, Any] | None = None) -> Iterator[Passage]:
        """Every stored passage (matching `where`), page by page."""
        for batch in self._pages(where=where, include=["metadatas", "documents"]):
            for meta, text in zip(batch["metadatas"], batch["documents"], strict=True):
                yield Passage.from_metadata(meta, text or "")

    def get(self, passage_ids: list[str]) -> list[Passage]:
        """The passages with these ids, in the order asked (missing ones left out)."""
        if not passage_ids:
            return []
        result = self.collection.get(ids=passage_ids, include=["metadatas", "documents"])
        by_id = {
            pid: Passage.from_metadata(meta, text or "")
            for pid, meta, text in zip(result["ids"], result["metadatas"], result["documents"], strict=True)
        }
        return [by_id[pid] for pid in passage_ids if pid in by_id]

    def find(self, where: dict[str, Any], limit: int | None = None) -> list[Passage]:
        """Passages whose metadata match `where` (Chroma's where syntax)."""
        result = self.collection.get(where=where, limit=limit, include=["metadatas", "documents"])
        return [Passage.from_metadata(m, t or "") for m, t in zip(result["metadatas"], result["documents"], strict=True)]

    def _pages(self, where: dict[str, Any] | None, include: list[str]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            batch = self.collection.get(where=where, include=include, limit=_PAGE, offset=offset)
            if not batch["ids"]:
                return
            yield batch
            offset += len(batch["ids"])

    # --- writing ------------------------------------------------------------------

    def add(self, passages: list[Passage], vectors: np.ndarray, model: str) -> None:
        """Store passages with their vectors as llama-index nodes; ids already present are replaced."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        if not passages:
            return
        ids = [p.passage_id for p in passages]
        self.collection.delete(ids=ids)  # replace: Chroma's add keeps an existing id's old record
        nodes = []
        for passage, vector in zip(passages, vectors, strict=True):
            metadata = passage.to_metadata() | {
                "content_hash": passage.content_hash(model),
                "record_hash": passage.record_hash(model),
            }
            nodes.append(
                TextNode(
                    id_=passage.passage_id,
                    text=passage.text,
                    metadata=metadata,
                    embedding=[float(x) for x in vector],
                    excluded_embed_metadata_keys=list(metadata),
                    excluded_llm_metadata_keys=list(metadata),
                    # llama-index writes the source's id as `doc_id`/`ref_doc_id`: make that our doc id
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=passage.doc_id)},
                )
            )
        self.vector_store.add(nodes)

    def delete(self, passage_ids: list[str]) -> None:
        for start in range(0, len(passage_ids), 5000):
            self.collection.delete(ids=passage_ids[start : start + 5000])

    # --- dense search -------------------------------------------------------------

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Ids of the nearest passages to `vector` with their cosine similarity, best first.

        Only ids and distances come back: fetching metadata and text for every candidate cost ten times the
        search itself; the caller fetches the few passages it keeps with `get`.
        """
        result = self.collection.query(query_embeddings=[vector.tolist()], n_results=k, where=where or None, include=["distances"])
        return [(pid, 1.0 - float(d)) for pid, d in zip(result["ids"][0], result["distances"][0], strict=True)]
