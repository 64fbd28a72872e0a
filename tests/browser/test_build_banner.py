"""The build banner (issue 17): while `kb serve` builds the knowledge base in the background, the demo page and
the widget say how far the build is and that answers rest on keyword search for some texts; once it is done,
the banner goes away by itself (no reload)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from kb.build_progress import read_build_progress
from kb.settings import Settings
from tests.conftest import SUBSET, kb_env, write_subset_manifest
from tests.servers import serve

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WAIT = 240_000  # ms: the build on two shared cores


def test_the_demo_page_shows_the_build_banner_during_the_build_and_not_after(
    page, screenshot, corpus_dir: Path, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    manifest = write_subset_manifest(tmp_path / "manifest.yaml", {"nis2": SUBSET["nis2"]})
    data_dir = tmp_path / "data"
    progress_file = Settings(data_dir=data_dir).build_progress_file
    server = serve(kb_env(data_dir, manifest, corpus_dir, KB_BUILD_NICENESS="0"), tmp_path / "server.log")
    base = next(server)
    try:
        deadline = time.monotonic() + 120
        # held still as its embedding pass begins: then it is computing vectors, between two writes to the store
        # (a process stopped inside a store write would hold the store's lock, which no real build does for long)
        while not ((p := read_build_progress(progress_file)) and p.phase == "embedding" and p.state == "building"):
            assert time.monotonic() < deadline, "the build did not reach its embedding pass"
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGSTOP)  # hold the build still while the page looks at it
        try:
            page.goto(f"{base}/")
            banner = page.locator("[data-kb-build-banner]")
            banner.wait_for(state="visible", timeout=30_000)
            text = banner.text_content() or ""
            assert f"Indekset bygges stadig ({p.percent} %)" in text and "søgning på ord" in text, text
            assert p.percent < 100
            page.locator(".kbw-launcher").click()
            in_widget = page.locator(".kbw-build-banner")
            in_widget.wait_for(state="visible", timeout=30_000)
            assert "søgning på ord for nogle tekster" in (in_widget.text_content() or "")
            page.locator('.kbw-lang-button[data-lang="en"]').click()
            assert "The index is still being built (" in (in_widget.text_content() or "")
            assert "answers use keyword search for some texts" in (in_widget.text_content() or "")
            screenshot("building")
        finally:
            os.kill(p.pid, signal.SIGCONT)
        page.locator("[data-kb-build-banner]").wait_for(state="hidden", timeout=WAIT)
        page.locator(".kbw-build-banner").wait_for(state="hidden", timeout=30_000)
        assert httpx.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"
        screenshot("built")
    finally:
        server.close()
