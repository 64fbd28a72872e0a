"""The `kb` command line: help for every command, JSON shapes, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kb.knowledge_base import KnowledgeBase
from tests.conftest import kb_env

COMMANDS = ["ingest", "search", "stats"]


def _kb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kb.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def test_help_lists_every_command() -> None:
    run = _kb("--help")
    assert run.returncode == 0
    for command in COMMANDS:
        assert command in run.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    run = _kb(command, "--help")
    assert run.returncode == 0 and "--json" in run.stdout


def test_unbuilt_knowledge_base_says_run_ingest(tmp_path: Path, corpus_dir: Path) -> None:
    env = kb_env(tmp_path / "empty", Path("ingest/manifest.yaml").resolve(), corpus_dir)
    for args in (["search", "anything"], ["stats"]):
        run = _kb(*args, env=env)
        assert run.returncode == 1
        assert "kb ingest" in run.stderr and "Traceback" not in run.stderr


def test_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    env = kb_env(tmp_path / "data", Path("ingest/manifest.yaml").resolve(), tmp_path / "nowhere")
    run = _kb("ingest", env=env)
    assert run.returncode == 1 and "corpus folder not found" in run.stderr


@pytest.mark.slow
def test_search_and_stats_json(small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path) -> None:
    env = kb_env(small_kb.settings.data_dir, subset_manifest, corpus_dir)
    run = _kb("search", "obligations of deployers of high-risk AI systems", "-k", "3", "--json", env=env)
    assert run.returncode == 0, run.stderr
    hits = json.loads(run.stdout)
    assert len(hits) == 3
    assert set(hits[0]) >= {"ref", "passage_id", "doc_id", "title", "language", "score", "text"}
    run = _kb("search", "innovationspartnerskab", "--doc", "udbudsloven", "--lang", "da", "--json", env=env)
    assert all(h["doc_id"] == "udbudsloven" for h in json.loads(run.stdout))
    run = _kb("search", "x", "--doc", "nope", env=env)
    assert run.returncode == 1 and "unknown doc 'nope'" in run.stderr and "Traceback" not in run.stderr
    run = _kb("search", "from which date shall this Regulation apply", "--changed-since", "2026-01-01", "--json", env=env)
    changed = json.loads(run.stdout)
    assert changed and all(h["amended_by"] == "2026/1744" for h in changed), run.stderr
    run = _kb("search", "x", "--changed-since", "soon", env=env)
    assert run.returncode == 1 and "--changed-since must be a date" in run.stderr

    stats = json.loads(_kb("stats", "--json", env=env).stdout)
    assert stats["passages"] == small_kb.store.count()
    udbud = stats["documents"]["udbudsloven"]
    assert udbud["passages"]["da"] > 0
    assert [v["version"] for v in udbud["versions"]] == ["LBK 116/2025", "LBK 10/2023", "L 1564/2015"]
    assert [v["in_force"] for v in udbud["versions"]] == [True, False, False]
    assert set(stats["documents"]["ai-act"]["passages"]) == {"da", "en"}
    assert {"digital-omnibus-ai", "procurement-directive"} <= set(stats["documents"])
    assert [v["version"] for v in stats["documents"]["ai-act"]["versions"]] == ["consolidated 2026-07-27", "OJ L, 12.7.2024"]
    assert "title" in stats["documents"]["ai-act"]
    table = _kb("stats", env=env)
    assert table.returncode == 0 and "udbudsloven" in table.stdout


def test_eval_is_one_command_with_clear_errors(tmp_path: Path, corpus_dir: Path) -> None:
    """`kb eval` is the one evaluation CLI (eval/runner.py has none): its usage errors exit 2 naming the fault."""
    env = kb_env(tmp_path / "empty", Path("ingest/manifest.yaml").resolve(), corpus_dir)
    smoke = str(Path("eval/datasets/smoke.jsonl").resolve())
    run = _kb("eval", "--dataset", smoke, "--systems", "ours,nope", env=env)
    assert run.returncode == 2 and "unknown system(s) nope" in run.stderr and "Traceback" not in run.stderr
    run = _kb("eval", "--dataset", smoke, env=env)
    said = " ".join(run.stderr.split())  # rich wraps the long folder name
    assert run.returncode == 2 and "is not built: run `kb ingest` first" in said
