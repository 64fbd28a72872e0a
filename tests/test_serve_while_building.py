"""Serve at once (issue 17): `kb serve` on an empty data dir answers while the knowledge base builds in the background,
marks its answers partial until the build is done, and a killed build resumes to the same store as an uninterrupted one.

The build here is a slice of the test subset (the PLD and NIS2: 41 passages in three texts) so it embeds in well
under a minute; the uninterrupted build it is compared with is the session's `small_kb`, which holds the same texts.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from kb.build_progress import BuildProgress, read_build_progress
from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.settings import Settings
from tests.conftest import SUBSET, kb_env, write_subset_manifest
from tests.servers import serve

pytestmark = pytest.mark.slow

BUILD_SUBSET = {doc: SUBSET[doc] for doc in ("pld", "nis2")}
QUESTION = "Hvilke foranstaltninger kræver artikel 21 i NIS2?"
T = TypeVar("T")
# The deadlines (healthz within 30 s, a partial answer within 60 s) hold on two cores of one's own; on a
# machine shared with other jobs, where starting Python alone can take most of a minute, stretch them with this.
SLACK = float(os.environ.get("KB_TEST_DEADLINE_FACTOR", "1"))


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    """The first truthy result of `check`, polled until `timeout` seconds have passed (then the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def progress_of(data_dir: Path) -> BuildProgress | None:
    return read_build_progress(Settings(data_dir=data_dir).build_progress_file)


def ask(base: str) -> dict[str, Any] | None:
    response = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=120)
    return response.json() if response.status_code == 200 else None


def health(base: str) -> tuple[dict[str, Any], str]:
    response = httpx.get(f"{base}/healthz", timeout=30)
    return response.json(), response.headers["X-KB-Worker"]


@contextmanager
def write_lock(data_dir: Path) -> Iterator[None]:
    """Hold the knowledge base's one-writer lock, as another writer would: a build waits for it."""
    with (data_dir / ".write.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_serve_answers_while_building_and_a_killed_build_resumes(
    small_kb: KnowledgeBase, corpus_dir: Path, tmp_path: Path
) -> None:
    manifest = write_subset_manifest(tmp_path / "manifest.yaml", BUILD_SUBSET)
    data_dir = tmp_path / "data"
    # the build at normal priority: on shared test machines a niced one waits behind everyone else's jobs
    env = kb_env(data_dir, manifest, corpus_dir, KB_RATE_LIMIT_PER_MINUTE="0", KB_BUILD_NICENESS="0")

    # 1. from an empty data dir: /healthz within 30 s with the build's progress, a partial cited answer within 60 s
    started = time.monotonic()
    first = serve(env, tmp_path / "serve-1.log")
    base = next(first)
    try:
        body = wait_for(lambda: health(base)[0].get("build"), 30 * SLACK - (time.monotonic() - started), "/healthz with the build")
        assert body["state"] == "building"
        # held still as its embedding pass begins (keyword index over every text, no vector yet): on an idle machine
        # these 41 passages embed in seconds, sooner than a first answer would come
        embedding = wait_for(
            lambda: (p := progress_of(data_dir)) and p.phase == "embedding" and p.state == "building" and p,
            60 * SLACK - (time.monotonic() - started),
            "the build's embedding pass",
            every=0.05,
        )
        os.kill(embedding.pid, signal.SIGSTOP)
        try:
            answer = wait_for(lambda: ask(base), 60 * SLACK - (time.monotonic() - started), "a cited answer while building")
        finally:
            os.kill(embedding.pid, signal.SIGCONT)
        assert answer["partial"] is True and answer["not_embedded"], answer
        assert not answer["abstained"] and answer["citations"]
        assert any(c["ref"].startswith("nis2:art-21") for c in answer["citations"])

        # 2. kill the build once its first text has its vectors: the service goes on answering, partially
        progress = wait_for(
            lambda: (p := progress_of(data_dir)) and p.phase == "embedding" and p.texts_done >= 1 and p,
            240,
            "the first text embedded",
        )
        assert 0 < progress.embedded < progress.passages
        os.kill(progress.pid, signal.SIGKILL)
        wait_for(lambda: (p := progress_of(data_dir)) and p.state == "interrupted", 30, "the build seen as interrupted")
        body, _ = health(base)
        assert body["status"] == "partial" and body["build"]["state"] == "interrupted"
        still = ask(base)
        assert still is not None and still["partial"] is True and still["not_embedded"]
        search = httpx.get(f"{base}/api/search", params={"q": "cybersikkerhed"}, timeout=60)
        assert search.status_code == 200 and search.json() and search.headers["X-KB-Partial"] == "true"
        assert search.headers["X-KB-Not-Embedded"].split(",") == still["not_embedded"]
    finally:
        first.close()
    # `kb stats` tells the same, before the next server starts: that one announces its resumed build at once
    stats = subprocess.run(
        [sys.executable, "-m", "kb.cli", "stats", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert stats.returncode == 0, stats.stderr
    build = json.loads(stats.stdout)["build"]
    assert build["state"] == "interrupted" and 0 < build["embedded"] < build["passages"]

    # 3. `kb serve` again resumes the build; the same server answers partially, then fully, with no restart
    with write_lock(data_dir):  # the resumed build waits for this writer: the answer below is surely partial
        second = serve(env, tmp_path / "serve-2.log")
        base = next(second)
        try:
            during = ask(base)
            _, worker = health(base)
        except BaseException:
            second.close()
            raise
    try:
        assert during is not None and during["partial"] is True
        wait_for(lambda: health(base)[0]["status"] == "ok", 300, "the resumed build to finish", every=1)
        after = ask(base)
        assert after is not None and after["partial"] is False and after["not_embedded"] == [] and after["citations"]
        assert "X-KB-Partial" not in httpx.get(f"{base}/api/search", params={"q": "cybersikkerhed"}, timeout=60).headers
        body, same_worker = health(base)
        assert same_worker == worker and "build" not in body  # the worker that answered partially, not restarted
        assert progress_of(data_dir).state == "done"  # type: ignore[union-attr]
    finally:
        second.close()

    # 4. the same store as an uninterrupted build of these texts (the session's subset knowledge base)
    resumed = KnowledgeBase(Settings(data_dir=data_dir, corpus_dir=corpus_dir, manifest=manifest))
    reference = small_kb.store.hashes(Match(doc_id=tuple(sorted(BUILD_SUBSET))))
    assert resumed.store.hashes() == reference  # the same passage ids with the same records
    assert resumed.store.pending() == {}
    assert resumed.store.count() == len(reference) == len(resumed.keywords.rows)
    ids = sorted(reference)
    ours, theirs = resumed.store.vectors(ids), small_kb.store.vectors(ids)
    assert len(ours) == len(theirs) == len(ids)  # a vector for every passage, no placeholder left
    assert np.allclose(np.stack([ours[i] for i in ids]), np.stack([theirs[i] for i in ids]), atol=1e-5)
