"""Uploaded documents beside the corpus: a killed upload ingest converges on rerun (no duplicates, no orphans),
a corpus ingest never touches an upload, an upload never touches the corpus, and removal leaves nothing behind.

Real `kb ingest --file` processes on a copy of the session knowledge base, SIGKILLed mid-embedding.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from ingest.uploads.checks import UploadLimits
from ingest.uploads.passages import parse_upload
from ingest.uploads.registry import Uploads
from ingest.uploads.service import UPLOAD_WRITE_BATCH
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings
from tests.conftest import copy_data_dir, kb_env

pytestmark = pytest.mark.slow

DOC_ID = "testby-procurement-rules"
SECTIONS = 3 * UPLOAD_WRITE_BATCH  # three write batches: the kill lands after the first is stored


def guidance_markdown() -> str:
    """An organisation's own guidance with distinct sections (none shares a vector with the corpus)."""
    topics = ["markedsdialog", "databehandleraftale", "CE-mærkning", "risikovurdering", "klinisk afprøvning", "exit-plan"]
    parts = ["# Region Testby: regler for indkøb af AI\n\nReglerne gælder alle hospitaler i Region Testby.\n"]
    for i in range(1, SECTIONS + 1):
        topic = topics[i % len(topics)]
        parts.append(
            f"## Regel {i}: {topic}\n\nFor indkøb nummer {i} i afdeling {i * 7 % 31} skal projektlederen dokumentere "
            f"{topic} senest {i % 28 + 1} dage efter kontraktstart, og leverandøren bekræfter det skriftligt (sag {1000 + i}).\n"
        )
    return "\n".join(parts)


@pytest.fixture(scope="module")
def work(small_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("upload-ingest")
    copy_data_dir(small_kb.settings.data_dir, root / "data")
    (root / "regler.md").write_text(guidance_markdown(), encoding="utf-8")
    return {"data": root / "data", "file": root / "regler.md", "audit": root / "audit.jsonl"}


def _kb(work: dict[str, Path], small_kb: KnowledgeBase) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=work["data"], corpus_dir=small_kb.settings.corpus_dir, manifest=small_kb.settings.manifest))


def _cmd(work: dict[str, Path], *extra: str) -> list[str]:
    return [sys.executable, "-m", "kb.cli", "ingest", "--file", str(work["file"]), "--doc-id", DOC_ID,
            "--title", "Region Testby: regler for indkøb af AI", "--kind", "guidance", "--lang", "da", *extra]


def _env(work: dict[str, Path], small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path) -> dict[str, str]:
    return kb_env(work["data"], subset_manifest, corpus_dir, KB_AUDIT_LOG=str(work["audit"]))


def test_killed_upload_ingest_converges(
    work: dict[str, Path], small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path
) -> None:
    """SIGKILL after the first batch is stored, run again: exactly the upload's passages, once each."""
    corpus_before = small_kb.store.hashes()
    env = _env(work, small_kb, subset_manifest, corpus_dir)
    record_file = work["data"] / "uploads" / DOC_ID / "record.json"
    proc = subprocess.Popen(_cmd(work), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 900
    while True:  # two batches embedded means the first is in the store; the third is still to come
        assert proc.poll() is None, f"the ingest ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        try:
            record = json.loads(record_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            record = {}
        if record.get("embedded", 0) >= 2 * UPLOAD_WRITE_BATCH:
            break
        assert time.monotonic() < deadline, "the ingest made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = json.loads(record_file.read_text())
    assert killed["status"] == "ingesting", "the record shows the work was cut off"

    rerun = subprocess.run(_cmd(work, "--json"), check=False, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    done = json.loads(rerun.stdout)
    assert done["status"] == "ready" and done["passages"] == SECTIONS + 1
    assert done["embedded"] <= SECTIONS + 1 - UPLOAD_WRITE_BATCH, "the rerun kept what the killed run had stored"

    kb = _kb(work, small_kb)
    uploads = Uploads(work["data"])
    record = uploads.get(DOC_ID)
    assert record is not None
    expected = {
        p.passage_id: p.record_hash(kb.embedder.model_name)
        for p in parse_upload(uploads.source(record), record, kb.settings.max_passage_chars, UploadLimits())
    }
    stored = kb.store.hashes()
    assert {pid: h for pid, h in stored.items() if pid.startswith(f"{DOC_ID}:")} == expected
    assert {pid: h for pid, h in stored.items() if not pid.startswith(f"{DOC_ID}:")} == corpus_before, "the corpus is untouched"
    assert kb.store.count() == len(corpus_before) + len(expected), "no duplicates, no orphans"
    assert sorted(r.passage_id for r in kb.keywords.rows) == sorted(stored)
    assert kb.search("projektlederen dokumentere markedsdialog", k=3)[0].passage.doc_id == DOC_ID
    assert kb.stats()["documents"][DOC_ID]["origin"] == "upload"

    again = subprocess.run(_cmd(work, "--json"), check=False, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["updated_at"] == done["updated_at"], "a finished upload is not redone"
    assert _kb(work, small_kb).store.hashes() == stored


def test_corpus_ingest_never_touches_uploads(work: dict[str, Path], small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path) -> None:
    kb = _kb(work, small_kb)
    before = kb.store.hashes()
    uploaded = {pid for pid in before if pid.startswith(f"{DOC_ID}:")}
    assert uploaded, "runs after the upload test"
    report = ingest(kb, corpus_dir, subset_manifest)  # the whole manifest: prunes what the manifest no longer lists
    assert not report.failed and report.pruned == 0
    assert kb.store.hashes() == before
    narrow = ingest(kb, corpus_dir, subset_manifest, only={"gdpr"})
    assert not narrow.failed and kb.store.hashes() == before


def test_a_manifest_cannot_take_an_uploaded_doc_id(
    work: dict[str, Path], small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path
) -> None:
    """A later manifest listing the upload's doc id fails that document, naming the file and field; the rest goes on."""
    import yaml

    kb = _kb(work, small_kb)
    before = kb.store.hashes()
    assert any(pid.startswith(f"{DOC_ID}:") for pid in before), "runs after the upload test"
    data = yaml.safe_load(subset_manifest.read_text(encoding="utf-8"))
    clash = dict(next(d for d in data["documents"] if d["doc_id"] == "komiteloven"), doc_id=DOC_ID)
    data["documents"].append(clash)
    manifest = work["data"].parent / "clash-manifest.yaml"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    report = ingest(kb, corpus_dir, manifest, only={DOC_ID, "gdpr"})
    failed = {t.doc_id: t.error for t in report.failed}
    assert set(failed) == {DOC_ID}, failed
    assert all(f"{manifest}: documents[{DOC_ID}]: the doc id belongs to an uploaded document" in e for e in failed.values() if e)
    assert any(t.doc_id == "gdpr" and t.unchanged for t in report.texts), "the other documents are ingested as usual"
    assert kb.store.hashes() == before, "nothing of the clashing document is written"


def test_removal_leaves_no_orphans(work: dict[str, Path], small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path) -> None:
    env = _env(work, small_kb, subset_manifest, corpus_dir)
    removed = subprocess.run(
        [sys.executable, "-m", "kb.cli", "ingest", "--remove", DOC_ID, "--json"], check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert json.loads(removed.stdout)["passages_removed"] == SECTIONS + 1
    kb = _kb(work, small_kb)
    assert kb.store.hashes() == small_kb.store.hashes()
    assert sorted(r.passage_id for r in kb.keywords.rows) == sorted(small_kb.store.hashes())
    assert DOC_ID not in kb.stats()["documents"]
    assert not (work["data"] / "uploads" / DOC_ID).exists()
    refused = subprocess.run([sys.executable, "-m", "kb.cli", "ingest", "--remove", "gdpr"], check=False, env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "corpus document" in refused.stderr
    audit = [json.loads(line) for line in work["audit"].read_text().splitlines()]
    assert [(e["action"], e["outcome"]) for e in audit if e["doc_id"] == DOC_ID][-1] == ("delete", "deleted")
    assert all(e["who"].startswith("cli:") for e in audit)


def test_uploads_ingested_together_refresh_the_keyword_index_once(
    small_kb: KnowledgeBase, tmp_path: Path
) -> None:
    """Three accepted uploads and one that fails, embedded in one go: each stored upload is searchable and `ready`,
    the failed one is `failed` with none of its passages left, and the keyword index was rebuilt once for all
    (on the whole corpus a rebuild costs seconds; uploads queued behind a writer each paid it)."""
    from ingest.uploads.service import DocumentFields, UploadService

    data = copy_data_dir(small_kb.settings.data_dir, tmp_path / "data")
    kb = KnowledgeBase(Settings(data_dir=data, corpus_dir=small_kb.settings.corpus_dir, manifest=small_kb.settings.manifest))
    service = UploadService(kb)
    doc_ids = [f"batch-rule-{i}" for i in range(4)]
    accepted = []
    for i, doc_id in enumerate(doc_ids):
        path = tmp_path / f"{doc_id}.md"
        path.write_text(f"# Nøgleboks {i}\n\nNøgleboksen i fløj {i} åbnes med kode {4100 + i} af portøren.\n", encoding="utf-8")
        record, passages = service.accept_file(path, DocumentFields(doc_id, f"Nøgleboks {i}", "guidance", "da"), "test")
        accepted.append((record.doc_id, passages))
    Uploads(data).source(Uploads(data).get(doc_ids[3])).write_bytes(b"\xff\xfe not UTF-8")  # type: ignore[arg-type]
    accepted[3] = (doc_ids[3], None)  # parsed again from its (now broken) file: it fails
    rebuilt: list[bool] = []
    refresh = kb.refresh_keyword_index
    kb.refresh_keyword_index = lambda: rebuilt.append(refresh()) or rebuilt[-1]  # type: ignore[method-assign]
    records = service.ingest_all(accepted)
    assert [r.status for r in records] == ["ready", "ready", "ready", "failed"]  # type: ignore[union-attr]
    assert records[3].error and "UTF-8" in records[3].error  # type: ignore[union-attr]
    assert rebuilt == [True]
    stored = {pid.split(":")[0] for pid in kb.store.hashes()}
    assert set(doc_ids[:3]) <= stored and doc_ids[3] not in stored
    for i in range(3):
        hits = kb.search(f"nøgleboks fløj {i} kode {4100 + i}", k=3)
        assert hits and hits[0].passage.doc_id == doc_ids[i]


def test_the_upload_worker_groups_consecutive_uploads_in_order() -> None:
    from service.upload_worker import IngestJob, _in_turn

    first, second = object(), object()  # two knowledge bases
    a, b, c, d = (IngestJob(type("S", (), {"kb": kb})(), doc) for kb, doc in ((first, "a"), (first, "b"), (first, "c"), (second, "d")))  # type: ignore[arg-type]
    resume = lambda: None  # noqa: E731
    groups = _in_turn([resume, a, b, resume, c, d])
    assert groups == [resume, [a, b], resume, [c], [d]]


def test_uploads_whose_keyword_index_rebuild_fails_are_failed_with_the_reason(small_kb: KnowledgeBase, tmp_path: Path) -> None:
    """Stored but never searchable is not ready: when the one rebuild after a batch fails, each upload of it is
    `failed` with the reason and has no passages left (a retry starts clean)."""
    from ingest.uploads.service import DocumentFields, UploadService

    data = copy_data_dir(small_kb.settings.data_dir, tmp_path / "data")
    kb = KnowledgeBase(Settings(data_dir=data, corpus_dir=small_kb.settings.corpus_dir, manifest=small_kb.settings.manifest))
    service = UploadService(kb)
    accepted = []
    for i in range(2):
        path = tmp_path / f"rule-{i}.md"
        path.write_text(f"# Adgangskort {i}\n\nAdgangskort {i} udleveres af vagten ved port {i + 3}.\n", encoding="utf-8")
        record, passages = service.accept_file(path, DocumentFields(f"card-rule-{i}", f"Adgangskort {i}", "guidance", "da"), "test")
        accepted.append((record.doc_id, passages))

    def full_disk() -> bool:
        raise OSError(28, "No space left on device")

    kb.refresh_keyword_index = full_disk  # type: ignore[method-assign]
    records = service.ingest_all(accepted)
    assert [r.status for r in records] == ["failed", "failed"]  # type: ignore[union-attr]
    assert all("No space left on device" in (r.error or "") for r in records)  # type: ignore[union-attr]
    assert not any(pid.startswith("card-rule-") for pid in kb.store.hashes())
