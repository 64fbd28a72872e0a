"""The passage store: Chroma (embedded or a `chroma run` server) behind llama-index's `ChromaVectorStore`.

We hand Chroma our own vectors, so its default embedding function (which
would download a model) is never used; telemetry is off.

In server mode (`KB_CHROMA_URL`) the store can go away and come back. Every
call then either answers or raises `StoreUnavailableError` (a 503 at the
service) within `KB_CHROMA_TIMEOUT` seconds. chromadb's `HttpClient` keeps an
httpx connection pool that reconnects by itself once the server is back (the
collection keeps its id on the same `--path`), so recovery needs no restart;
a store that was down when the process started is opened on first use.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kb.errors import StoreUnavailableError
from kb.match import Match
from kb.passage import Passage

COLLECTION = "passages"
PENDING = "pending"  # metadata key of a passage stored before its vector (true only on those)
_PAGE = 5000
log = logging.getLogger(__name__)
_Call = TypeVar("_Call", bound=Callable[..., Any])


def _conditions(match: Match) -> list[dict[str, Any]]:
    """A Match in Chroma's `where` dialect: one condition per field set, in field order."""
    out: list[dict[str, Any]] = []
    for name, value in ((f.name, getattr(match, f.name)) for f in fields(match)):
        if value is None or (name == "citing" and not value):
            continue
        if name == "citing":
            out.append({"cites": {"$ne": ""}})
        elif name.startswith("not_"):
            key = name.removeprefix("not_")
            out.append({key: {"$nin": list(value)}} if isinstance(value, tuple) else {key: {"$ne": value}})
        elif name == "order_from":
            out.append({"order": {"$gte": value}})
        elif name == "order_to":
            out.append({"order": {"$lte": value}})
        else:
            out.append({name: {"$in": list(value)}} if isinstance(value, tuple) else {name: value})
    return out


def _where(match: Match | None, *extra: dict[str, Any]) -> dict[str, Any] | None:
    """Chroma's `where` for a Match (and any conditions of the store's own): None, one condition, or an `$and`."""
    conditions = [*extra, *(_conditions(match) if match is not None else [])]
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


@contextmanager
def reaching(where: str) -> Iterator[None]:
    """Turn the HTTP client's transport errors (refused, reset, timed out) into StoreUnavailableError."""
    import httpx

    try:
        yield
    except httpx.TransportError as exc:
        reason = "timed out" if isinstance(exc, httpx.TimeoutException) else (str(exc) or type(exc).__name__)
        raise StoreUnavailableError(where, reason) from exc


def open_client(chroma_dir: Path, chroma_url: str | None, timeout: float = 10.0) -> Any:
    """An embedded `PersistentClient` in `chroma_dir`, or an `HttpClient` when a server URL is set.

    The server is probed first with `timeout`: chromadb's client makes its own first requests with no
    timeout at all, so a hung server would otherwise hang the caller. StoreUnavailableError when unreachable.
    """
    import chromadb

    if chroma_url:
        from urllib.parse import urlparse

        import httpx

        url = urlparse(chroma_url)
        base = f"{url.scheme or 'http'}://{url.hostname or '127.0.0.1'}:{url.port or 8000}"
        with reaching(chroma_url):
            httpx.get(f"{base}/api/v2/heartbeat", timeout=timeout).raise_for_status()
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=_chroma_settings(),
            )
        # chromadb builds its httpx session with timeout=None and offers no setting for it
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(timeout, connect=min(timeout, 3.0))
        return client
    chroma_dir.mkdir(parents=True, exist_ok=True)
    use_write_ahead_log(chroma_dir / "chroma.sqlite3")
    return chromadb.PersistentClient(path=str(chroma_dir), settings=_chroma_settings())


_WAL_SET: set[Path] = set()  # the store files this process has put in WAL mode (or tried to)
_WAL_LOCK = threading.Lock()


def use_write_ahead_log(database: Path) -> None:
    """Put an embedded store's SQLite file in WAL mode, so that no process waits for another one that only reads.

    chromadb leaves the file in rollback-journal mode. Opening a chromadb client writes, and chromadb waits for the
    lock with no timeout while holding the GIL; in rollback-journal mode another process's read transaction blocks
    that write. So a build stopped, or starved of CPU, in its store lookups froze the service worker that reopened
    the store for the build's new index stamp (stop 21's CI). In WAL mode readers block no one. (A writer still
    makes the others wait while it writes: our writers take turns under the write lock, and a service worker only
    opens a client.)

    Done once per file and process, before chromadb opens the file here: this process's `sqlite3` is another copy of
    SQLite than chromadb's, and closing it while chromadb has the file open would drop chromadb's POSIX locks and
    delete its WAL under it (https://www.sqlite.org/howtocorrupt.html, 2.2). The mode is kept in the file; a new
    file is created in it. A file that another process holds in a transaction now is tried again by the next
    process that opens it.
    """
    import sqlite3

    key = database.resolve()
    with _WAL_LOCK:
        if key in _WAL_SET:
            return
        _WAL_SET.add(key)
        try:
            with closing(sqlite3.connect(key, timeout=5)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            log.warning("%s: could not switch to WAL mode (%s); the next process to open it tries again", key, exc)


def _open_collection(client: Any, name: str) -> Any:
    """The collection, created only when it is not there yet: `get_or_create_collection` writes even when it exists,
    and a write waits (holding the GIL, with no timeout) for any writer of another process to finish; a service
    worker that reopens the store while a build writes must only read."""
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name, embedding_function=None)
    except NotFoundError:
        return client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)


def _reaching_store(method: _Call) -> _Call:
    """Run a store method with the server's transport errors turned into StoreUnavailableError."""

    @functools.wraps(method)
    def call(self: PassageStore, *args: Any, **kwargs: Any) -> Any:
        with reaching(self.location):
            return method(self, *args, **kwargs)

    return call  # type: ignore[return-value]


class PassageStore:
    """Passages with their vectors; the one place that talks to Chroma.

    `client` is a chromadb client, or a function that opens one: then the client and the collection are
    opened on first use (and again on later calls while the server is down), not when the store is made.
    """

    def __init__(self, client: Any, collection: str = COLLECTION, location: str = "") -> None:
        self._open: Callable[[], Any] = client if callable(client) else (lambda: client)
        self.name = collection
        self.location = location or "the Chroma store"
        self._client: Any = None
        self._collection: Any = None
        self._vector_store: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> None:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        with self._lock, reaching(self.location):
            if self._collection is not None:
                return
            client = self._open()
            collection = _open_collection(client, self.name)
            self._vector_store = ChromaVectorStore(chroma_collection=collection)
            self._client, self._collection = client, collection

    @property
    def client(self) -> Any:
        if self._collection is None:
            self._connect()
        return self._client

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._connect()
        return self._collection

    @property
    def vector_store(self) -> Any:
        if self._collection is None:
            self._connect()
        return self._vector_store

    def reopen(self) -> None:
        """Open a fresh client on next use: an embedded client keeps its vector index in memory and does not
        see what another process (an ingest) wrote. Calls in flight finish on the old client, left unclosed."""
        from chromadb.api.shared_system_client import SharedSystemClient

        with self._lock:
            # chromadb shares one client system per path; forgetting it makes the next client read the files anew
            SharedSystemClient.clear_system_cache()
            self._client, self._collection, self._vector_store = None, None, None

    def close(self) -> None:
        """Release the client (an embedded store's files and memory); the store reopens on next use."""
        with self._lock:
            client, self._client, self._collection, self._vector_store = self._client, None, None, None
        if client is not None and hasattr(client, "close"):
            client.close()

    # --- what is there -----------------------------------------------------------

    @_reaching_store
    def count(self) -> int:
        return self.collection.count()

    @property
    @_reaching_store
    def embedding_model(self) -> str | None:
        """The embedding model the store was built with (None while empty)."""
        return (self.collection.metadata or {}).get("embedding_model")

    @_reaching_store
    def set_embedding_model(self, model: str) -> None:
        metadata = dict(self.collection.metadata or {})
        if metadata.get("embedding_model") != model:
            metadata["embedding_model"] = model
            metadata.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
            self.collection.modify(metadata=metadata)

    @_reaching_store
    def hashes(self, match: Match | None = None) -> dict[str, str]:
        """Passage id -> record hash of every stored passage (matching `match`)."""
        out: dict[str, str] = {}
        for batch in self._pages(where=_where(match), include=["metadatas"]):
            for pid, meta in zip(batch["ids"], batch["metadatas"], strict=True):
                out[pid] = (meta or {}).get("record_hash", "")
        return out

    @_reaching_store
    def pending(self, match: Match | None = None) -> dict[str, str]:
        """Passage id -> text key of every stored passage that has no vector yet (a placeholder, see `add`)."""
        result = self.collection.get(where=_where(match, {PENDING: True}), include=["metadatas"])
        return {pid: (meta or {}).get("text_key", "") for pid, meta in zip(result["ids"], result["metadatas"], strict=True)}

    @_reaching_store
    def vectors_for_hashes(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by content hash, so identical text (another version, a rerun) is not embedded again."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            result = self.collection.get(where={"content_hash": {"$in": chunk}}, include=["metadatas", "embeddings"])
            for meta, vector in zip(result["metadatas"], result["embeddings"], strict=True):
                if not meta.get(PENDING):  # a placeholder is no vector to reuse
                    found[meta["content_hash"]] = np.asarray(vector, dtype=np.float32)
        return found

    @_reaching_store
    def vectors(self, passage_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by passage id (missing ones, and placeholders, left out)."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(passage_ids), 500):
            result = self.collection.get(ids=passage_ids[start : start + 500], include=["embeddings", "metadatas"])
            for pid, vector, meta in zip(result["ids"], result["embeddings"], result["metadatas"], strict=True):
                if not (meta or {}).get(PENDING):
                    found[pid] = np.asarray(vector, dtype=np.float32)
        return found

    def iter_passages(self, match: Match | None = None) -> Iterator[Passage]:
        """Every stored passage (matching `match`), page by page."""
        for batch in self._pages(where=_where(match), include=["metadatas", "documents"]):
            for meta, text in zip(batch["metadatas"], batch["documents"], strict=True):
                yield Passage.from_metadata(meta, text or "")

    @_reaching_store
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

    @_reaching_store
    def find(self, match: Match, limit: int | None = None) -> list[Passage]:
        """Passages that `match`."""
        result = self.collection.get(where=_where(match), limit=limit, include=["metadatas", "documents"])
        return [Passage.from_metadata(m, t or "") for m, t in zip(result["metadatas"], result["documents"], strict=True)]

    def _pages(self, where: dict[str, Any] | None, include: list[str]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            with reaching(self.location):
                batch = self.collection.get(where=where, include=include, limit=_PAGE, offset=offset)
            if not batch["ids"]:
                return
            yield batch
            offset += len(batch["ids"])

    # --- writing ------------------------------------------------------------------

    @_reaching_store
    def add(self, passages: list[Passage], vectors: np.ndarray, model: str, pending: bool = False) -> None:
        """Store passages with their vectors as llama-index nodes; ids already present are replaced.

        `pending`: the vectors are placeholders (the build stores every text for keyword search before it embeds
        them); such records carry `pending: true`, are never reused as vectors, and dense search skips them.
        """
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
            } | ({PENDING: True} if pending else {})
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

    @_reaching_store
    def delete(self, passage_ids: list[str]) -> None:
        for start in range(0, len(passage_ids), 5000):
            self.collection.delete(ids=passage_ids[start : start + 5000])

    # --- dense search -------------------------------------------------------------

    @_reaching_store
    def query(self, vector: np.ndarray, k: int, match: Match | None = None) -> list[tuple[str, float]]:
        """Ids of the nearest passages to `vector` (among those that `match`) with their cosine similarity, best first.

        Only ids and distances come back: fetching metadata and text for every candidate cost ten times the
        search itself; the caller fetches the few passages it keeps with `get`.
        """
        result = self.collection.query(query_embeddings=[vector.tolist()], n_results=k, where=_where(match), include=["distances"])
        # Chroma computes float32 distances; the embedded client hands them over as such, the HTTP client as JSON
        # decimals: rounding both to float32 makes the two modes give the very same scores. Equal vectors (the
        # same text in two versions) tie: the passage id breaks the tie, as the fusion does, whatever HNSW's order.
        found = [(pid, 1.0 - float(np.float32(d))) for pid, d in zip(result["ids"][0], result["distances"][0], strict=True)]
        return sorted(found, key=lambda hit: (-hit[1], hit[0]))
