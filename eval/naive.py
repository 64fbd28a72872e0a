"""The naive llama-index pipeline a newcomer would build, as a baseline: chunks, a vector index, top-k.

What it does: the same corpus texts (taken from the knowledge base's passages, so
both systems see identical text) are concatenated per text (document, language,
version) in document order, each unit's heading written once where it starts, as
the source file would read; llama-index's `SentenceSplitter` with its defaults
(1024 tokens, 200 overlap) cuts them into chunks; a `VectorStoreIndex` over a
Chroma collection (telemetry off) embeds them with the same embedding model as
our knowledge base (`kb.embedding`; a chunk's text is cut to the model's
512-token window, about EMBED_WORDS words, as a HuggingFace pipeline would
truncate it, which also keeps the one-off build affordable); a question retrieves the top-k chunks by
cosine similarity. Nothing else: no keyword search, no legal structure, no
scenario, no refusal.

References: a chunk spans several passages. Every chunk keeps the references of
the passages it overlaps, ordered by how many of its characters each holds (its
main reference first); the ranking the evaluation scores is the chunks' references
in that order. The "answer" is the first sentence of each of the top 3 chunks,
each cited [n] to its chunk (shown as the chunk's main reference).

The index is built once per knowledge-base content and cached in
`<KB_DATA_DIR>/naive-index` (rebuilt when the store's fingerprint changes).
"""

from __future__ import annotations

import bisect
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.passage import Passage

COLLECTION = "naive-chunks"
EMBED_WORDS = 380  # ~512 tokens: the model's window; what a HuggingFace pipeline would truncate to
_FIRST_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")


@dataclass
class NaiveHit:
    text: str
    refs: list[str]
    score: float

    @property
    def ref(self) -> str:
        return self.refs[0]


def _texts(kb: KnowledgeBase) -> dict[str, list[Passage]]:
    by_text: dict[str, list[Passage]] = {}
    for passage in kb.store.iter_passages(Match(in_force=True)):
        by_text.setdefault(passage.text_key, []).append(passage)
    for passages in by_text.values():
        passages.sort(key=lambda p: p.order)
    return by_text


def _document(passages: list[Passage]) -> tuple[str, list[int], list[str]]:
    """The text as one string, and the start offset and reference of each passage in it."""
    parts: list[str] = []
    starts: list[int] = []
    refs: list[str] = []
    offset = 0
    heading = None
    for p in passages:
        block = p.text if p.heading == heading else f"{p.heading}\n{p.text}"
        heading = p.heading
        starts.append(offset)
        refs.append(p.ref)
        parts.append(block)
        offset += len(block) + 2
    return "\n\n".join(parts), starts, refs


def _chunk_refs(start: int, end: int, starts: list[int], refs: list[str], length: int) -> list[str]:
    """References of the passages overlapping [start, end), the one holding most characters first."""
    share: dict[str, int] = {}
    first = max(bisect.bisect_right(starts, start) - 1, 0)
    for i in range(first, len(starts)):
        if starts[i] >= end:
            break
        stop = starts[i + 1] if i + 1 < len(starts) else length
        overlap = min(end, stop) - max(start, starts[i])
        if overlap > 0:
            share[refs[i]] = share.get(refs[i], 0) + overlap
    return sorted(share, key=lambda r: -share[r]) or [refs[first]]


class NaiveIndex:
    """SentenceSplitter chunks in a llama-index VectorStoreIndex on Chroma, cached in the data dir."""

    def __init__(self, kb: KnowledgeBase, folder: Path | None = None) -> None:
        self.kb = kb
        self.folder = folder or kb.settings.data_dir / "naive-index"
        self._index: Any = None

    def _stamp(self) -> str:
        from llama_index.core.node_parser import SentenceSplitter

        splitter = SentenceSplitter()
        return (
            f"{self.kb.store_fingerprint()}:{self.kb.embedder.model_name}:{splitter.chunk_size}:{splitter.chunk_overlap}"
            f":{EMBED_WORDS}"
        )

    def _collection(self, client: Any) -> Any:
        return client.get_or_create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)

    def index(self, progress: Any = None) -> Any:
        """The vector index, loaded from the cache or built (chunk, embed, store)."""
        if self._index is not None:
            return self._index
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from kb.store import open_client

        stamp = self._stamp()
        stamp_file = self.folder / "stamp.json"
        cached = stamp_file.exists() and json.loads(stamp_file.read_text()).get("stamp") == stamp
        if not cached and self.folder.exists():
            shutil.rmtree(self.folder)
        client = open_client(self.folder / "chroma", None)
        store = ChromaVectorStore(chroma_collection=self._collection(client))
        if cached:
            self._index = VectorStoreIndex.from_vector_store(store, embed_model=self.kb.embedder)
            return self._index
        nodes = self._nodes()
        context = StorageContext.from_defaults(vector_store=store)
        if progress is not None:
            progress(f"naive baseline: embedding {len(nodes)} chunks (once; cached in {self.folder})")
        for start in range(0, len(nodes), 16):
            batch = nodes[start : start + 16]
            texts = [" ".join(n.get_content().split()[:EMBED_WORDS]) for n in batch]
            for node, vector in zip(batch, self.kb.embedder.get_text_embedding_batch(texts), strict=True):
                node.embedding = list(vector)
        self._index = VectorStoreIndex(nodes, storage_context=context, embed_model=self.kb.embedder, show_progress=False)
        stamp_file.write_text(json.dumps({"stamp": stamp, "chunks": len(nodes)}))
        return self._index

    def _nodes(self) -> list[Any]:
        from llama_index.core import Document
        from llama_index.core.node_parser import SentenceSplitter

        splitter = SentenceSplitter()
        nodes = []
        for key, passages in sorted(_texts(self.kb).items()):
            text, starts, refs = _document(passages)
            doc = Document(text=text, id_=key, metadata={"text_key": key})
            doc.excluded_embed_metadata_keys = ["text_key"]
            doc.excluded_llm_metadata_keys = ["text_key"]
            for node in splitter.get_nodes_from_documents([doc]):
                start = node.start_char_idx if node.start_char_idx is not None else max(text.find(node.text), 0)
                end = node.end_char_idx if node.end_char_idx is not None else start + len(node.text)
                chunk_refs = _chunk_refs(start, end, starts, refs, len(text))
                node.metadata = {"text_key": key, "refs": json.dumps(chunk_refs)}
                node.excluded_embed_metadata_keys = ["text_key", "refs"]
                node.excluded_llm_metadata_keys = ["text_key", "refs"]
                nodes.append(node)
        return nodes

    def retrieve(self, question: str, k: int = 10) -> list[NaiveHit]:
        retriever = self.index().as_retriever(similarity_top_k=k)
        out = []
        for hit in retriever.retrieve(question):
            refs = json.loads(hit.node.metadata.get("refs", "[]")) or ["unknown:page-0"]
            out.append(NaiveHit(text=hit.node.get_content(), refs=refs, score=float(hit.score or 0.0)))
        return out


def first_sentence(text: str, limit: int = 400) -> str:
    """The first sentence of a chunk (the naive 'answer' takes one per top chunk)."""
    body = " ".join(line.strip() for line in text.splitlines() if line.strip())
    sentence = _FIRST_SENTENCE.split(body, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0]
