"""One writer of the knowledge base at a time: an upload or a second ingest waits for the writer before it, says so,
and goes on once that writer has finished or died.

Without the lock an upload and a corpus ingest in two processes would both write the embedded Chroma store (each
client keeps its vector index in memory and would write over the other's additions) and both rebuild the keyword
index (the last rebuild would miss the other's passages). Real processes on a copy of the session knowledge base.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ingest.uploads.registry import Uploads
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings
from tests.conftest import copy_data_dir, kb_env

pytestmark = pytest.mark.slow

WAITING = "waiting for another writer of the knowledge base"
DOC_ID = "testby-lock-rules"

# Holds the write lock of the knowledge base in argv[1] until its stdin closes (or it is killed).
HOLDER = """
import sys
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings

kb = KnowledgeBase(Settings(data_dir=sys.argv[1]))
with kb.writing():
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture()
def data_copy(small_kb: KnowledgeBase, tmp_path: Path) -> Path:
    return copy_data_dir(small_kb.settings.data_dir, tmp_path / "data")


def _hold(data_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _stderr_lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's stderr, line by line as it comes, so the test can wait for one line without blocking on EOF."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], proc: subprocess.Popen[str], text: str, timeout: float = 300) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            assert proc.poll() is None, f"ended ({proc.returncode}) without waiting: {''.join(seen)[-2000:]}"
            continue
        if text in seen[-1]:
            return seen
    raise AssertionError(f"no {text!r} within {timeout} s: {''.join(seen)[-2000:]}")


def test_an_upload_waits_for_the_writer_before_it(
    data_copy: Path, small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    env = kb_env(data_copy, subset_manifest, corpus_dir, KB_AUDIT_LOG=str(tmp_path / "audit.jsonl"))
    guidance = tmp_path / "regler.md"
    guidance.write_text(
        "# Region Testby: låseregler\n\n## Regel 1\n\nProjektlederen noterer hver låsning af lagerrummet i logbogen.\n",
        encoding="utf-8",
    )
    holder = _hold(data_copy, env)
    try:
        upload = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "ingest", "--file", str(guidance), "--doc-id", DOC_ID,
             "--title", "Region Testby: låseregler", "--kind", "guidance", "--lang", "da", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait_for(_stderr_lines(upload), upload, WAITING)
        time.sleep(1)
        assert upload.poll() is None, "the upload went on while another writer held the lock"
        record = Uploads(data_copy).get(DOC_ID)
        assert record is not None and record.status == "queued", "accepted, not yet written"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the other writer finishes
        holder.wait(timeout=60)
    out, _ = upload.communicate(timeout=600)
    assert upload.returncode == 0
    assert json.loads(out)["status"] == "ready"
    kb = KnowledgeBase(Settings(data_dir=data_copy, corpus_dir=corpus_dir, manifest=subset_manifest))
    stored = [pid for pid in kb.store.hashes() if pid.startswith(f"{DOC_ID}:")]
    assert stored and sorted(stored) == sorted(r.passage_id for r in kb.keywords.rows if r.passage_id.startswith(f"{DOC_ID}:"))


def test_uploads_waiting_for_the_writer_hold_no_request_thread(
    data_copy: Path, small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    """More uploads queue behind a writer than the service has request threads (40): each is still accepted at
    once, status and search still answer, and once the writer is done every upload is embedded, in order."""
    from tests.servers import serve
    from tests.test_hostile_uploads import API_KEYS, upload

    count = 45
    env = kb_env(data_copy, subset_manifest, corpus_dir, KB_API_KEYS=API_KEYS, KB_RATE_LIMIT_PER_MINUTE="0")
    holder = _hold(data_copy, env)
    server = serve(env, tmp_path / "server.log")
    try:
        url = next(server)
        with httpx.Client(base_url=url, timeout=20) as client:
            for i in range(count):
                text = f"# Låseregel {i}\n\nRegel nummer {i} om nøglebokse i afsnit {i * 7 % 13}.\n"
                response = upload(client, f"regel-{i}.md", text.encode(), doc_id=f"lock-rule-{i}")
                assert response.status_code == 202, response.text
            assert client.get(f"/api/documents/lock-rule-{count - 1}").json()["status"] == "queued"
            assert client.get("/api/search", params={"q": "databehandler"}).status_code == 200
            assert holder.stdin is not None
            holder.stdin.close()  # the other writer finishes
            holder.wait(timeout=60)
            deadline = time.monotonic() + 600
            while client.get(f"/api/documents/lock-rule-{count - 1}").json()["status"] != "ready":
                assert time.monotonic() < deadline, "the queued uploads were not embedded"
                time.sleep(1)
            records = [Uploads(data_copy).get(f"lock-rule-{i}") for i in range(count)]
            assert all(r is not None and r.status == "ready" and r.passages == 1 for r in records)
            finished = [r.updated_at for r in records]  # type: ignore[union-attr]
            assert finished == sorted(finished), "embedded in the order they came"
    finally:
        if holder.poll() is None:
            holder.kill()
        server.close()


def test_a_corpus_ingest_waits_and_goes_on_when_the_writer_dies(
    data_copy: Path, small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path
) -> None:
    env = kb_env(data_copy, subset_manifest, corpus_dir)
    holder = _hold(data_copy, env)
    try:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "ingest", "--only", "gdpr", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _wait_for(_stderr_lines(ingest), ingest, WAITING)
        time.sleep(1)
        assert ingest.poll() is None, "the ingest went on while another writer held the lock"
    finally:
        holder.send_signal(signal.SIGKILL)  # a writer that dies releases the lock with it
        holder.wait(timeout=60)
    out, _ = ingest.communicate(timeout=600)
    assert ingest.returncode == 0
    report = json.loads(out)
    assert report["failed"] == 0 and report["texts"] and all(t["doc_id"] == "gdpr" for t in report["texts"])


def test_threads_take_turns_and_a_thread_may_nest(tmp_path: Path) -> None:
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data"))
    order: list[str] = []

    def second() -> None:
        with kb.writing():
            order.append("second")

    with kb.writing():
        with kb.writing():  # re-entrant: an upload's removal inside a replace does not deadlock
            order.append("first")
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive(), "the second thread got in while the first still wrote"
        order.append("first done")
    waiter.join(timeout=10)
    assert order == ["first", "first done", "second"]



# Reads the embedded store's SQLite file in argv[1] in one transaction, as a build does when it looks up which
# passages it holds before it embeds a text, until its stdin closes: a build stopped (or starved of CPU) there.
LOOKING_UP = """
import sqlite3, sys

connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN")
connection.execute("SELECT count(*) FROM embeddings").fetchone()
print("held", flush=True)
sys.stdin.read()
"""

# A service worker that has just seen a new index stamp: it reopens the store and answers a question from it.
READER = """
import sys
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings

kb = KnowledgeBase(Settings(data_dir=sys.argv[1]))
kb.store.reopen()
print(" ".join(c.ref for c in kb.ask("Hvilke foranstaltninger kræver artikel 21 i NIS2?").citations))
"""


def test_a_build_caught_reading_the_store_does_not_hold_up_the_service(
    data_copy: Path, small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path
) -> None:
    """Opening a chromadb client writes, and chromadb waits for the lock with no timeout, holding the GIL. In
    chromadb's own rollback-journal mode another process's read transaction blocks that write: a build stopped in
    its store lookups froze the service worker that reopened the store for the build's new index stamp (stop 21's
    CI). In WAL mode readers never block a writer."""
    env = kb_env(data_copy, subset_manifest, corpus_dir)
    assert KnowledgeBase(Settings(data_dir=data_copy)).store.count() > 0  # opened once, as by the writer that built it
    holder = subprocess.Popen(
        [sys.executable, "-c", LOOKING_UP, str(data_copy / "chroma" / "chroma.sqlite3")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        try:
            reader = subprocess.run(
                [sys.executable, "-c", READER, str(data_copy)], env=env, capture_output=True, text=True, timeout=180
            )
        except subprocess.TimeoutExpired:
            pytest.fail("a service worker waited for a build that holds a read transaction on the store")
        assert reader.returncode == 0, reader.stderr[-2000:]
        assert "nis2:art-21" in reader.stdout
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
