"""The benchmarks run, bounded and tiny, against the subset knowledge base and print their figures.

No timing is asserted (the machine is shared); what is checked is that each benchmark measures what it says:
every phase and stage is there, HTTP requests succeed, recall is a fraction, the plots are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.knowledge_base import KnowledgeBase
from kb.timing import record, stage
from tests.conftest import kb_env

REPO = Path(__file__).resolve().parent.parent


def _run(module: str, args: list[str], small_kb: KnowledgeBase, timeout: float = 600) -> tuple[str, dict]:
    env = kb_env(small_kb.settings.data_dir, small_kb.settings.manifest_path, small_kb.settings.corpus_dir)
    done = subprocess.run(
        [sys.executable, "-m", module, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    return done.stdout, json.loads(last)


def test_stage_times_are_exclusive_and_free_when_not_recording() -> None:
    with stage("outside"):  # nothing records: a no-op
        pass
    with record() as times, stage("outer"):
        time.sleep(0.02)
        with stage("inner"):
            time.sleep(0.05)
    assert set(times) == {"outer", "inner"}
    assert times["inner"] >= 0.05
    assert 0.02 <= times["outer"] < times["inner"]  # the inner stage's time is not counted in the outer one


def test_ask_records_its_stages(small_kb: KnowledgeBase) -> None:
    with record() as times:
        small_kb.ask("Hvilke pligter har en idriftsætter af et højrisiko-AI-system?")
    assert {"scenario", "embed", "dense", "bm25", "fusion", "fetch", "provisions", "abstention"} <= set(times)


def test_breakdown_prints_every_stage(small_kb: KnowledgeBase) -> None:
    out, result = _run("eval.bench_breakdown", ["--questions", "4", "--repeat", "2"], small_kb)
    assert result["questions"] == 4
    cold, warm = result["passes"]["cold"], result["passes"]["warm1"]
    for stage_name in ("scenario", "embed", "dense", "bm25", "fusion", "fetch", "provisions", "abstention", "other", "total"):
        assert stage_name in cold and "p95_ms" in cold[stage_name]
    assert cold["embed"]["mean_ms"] > 0  # the cold pass embeds each question
    assert warm["embed"]["mean_ms"] < cold["embed"]["mean_ms"]  # the warm pass finds them in the cache
    assert "share" in out


def test_clause_benchmark_times_search_and_the_clause_view(small_kb: KnowledgeBase) -> None:
    out, result = _run("eval.bench_clauses", ["--repeat", "1"], small_kb)
    assert result["search"]["n"] == 10 and result["search_within_scenario"]["n"] == 40
    assert "ai-act:art-26" in result["refs"] and "mdr:art-20" not in result["refs"]  # the subset holds no MDR Art. 20
    assert result["clause_view"]["n"] == len(result["refs"])
    assert all(result[name]["p50_ms"] > 0 for name in ("search", "search_within_scenario", "clause_view"))
    assert "clause_view" in out


@pytest.mark.slow
def test_http_benchmark_embedded_and_server(small_kb: KnowledgeBase) -> None:
    out, result = _run(
        "eval.bench_ask",
        ["--requests", "16", "--clients", "1,8", "--modes", "embedded,server", "--budget", "300"],
        small_kb,
    )
    assert result["in_process"]["requests"] == 16
    for mode in ("embedded", "server"):
        for clients in (1, 8):
            phase = result[f"{mode}_http_{clients}_clients"]
            assert phase["requests"] == 16 and phase["errors"] == 0, phase
            assert phase["p50_ms"] <= phase["p95_ms"] <= phase["p99_ms"]
            assert phase["service_rss_mb"] > 0
    assert result["server_http_8_clients"]["chroma_rss_mb"] > 0
    assert "answers_per_s" in out


@pytest.mark.slow
def test_scaling_benchmark_writes_curves(small_kb: KnowledgeBase, tmp_path: Path) -> None:
    real = small_kb.store.count()
    out, summary = _run(
        "eval.bench_scale",
        ["--sizes", f"{real},{real + 1000}", "--modes", "embedded,server", "--repeat", "1",
         "--work", str(tmp_path / "work"), "--report", str(tmp_path / "report")],
        small_kb,
    )
    assert "APPROXIMATED" in out
    rows = json.loads((tmp_path / "report" / "scale.json").read_text())["rows"]
    assert [(r["passages"], r["mode"]) for r in rows] == [
        (real, "embedded"), (real, "server"), (real + 1000, "embedded"), (real + 1000, "server")
    ]
    for row in rows:
        assert row["synthetic"] == row["passages"] - real
        for key in ("chroma_build_s", "chroma_disk_mb", "query_process_rss_mb", "retrieval_p95_ms"):
            assert row[key] > 0, key
        for key in ("recall@10_dense", "recall@10_bm25", "recall@10_fused"):
            assert 0.0 <= row[key] <= 1.0
    assert rows[0]["recall@10_fused"] > 0  # the real questions find their gold passages in the real knowledge base
    assert all(r["chroma_server_rss_mb"] > 0 for r in rows if r["mode"] == "server")
    assert summary["real_passages"] == real and summary["questions"] > 0
    assert "embedded_chroma_disk_mb_per_million" in summary
    for name in ("scale_latency.svg", "scale_recall.svg", "scale_memory.svg", "scale_build.svg"):
        assert (tmp_path / "report" / name).read_text().startswith("<svg")
