"""Real servers for tests: `kb serve` (uvicorn) on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from eval.servers import free_port, stop, wait_until_up

REPO = Path(__file__).resolve().parent.parent


def serve(
    env: dict[str, str], log_file: Path, extra_args: Sequence[str] = (), factory: str | None = None
) -> Iterator[str]:
    """`kb serve` on a free loopback port; yields its base URL once /healthz answers (200 or 503).

    `factory` ("module:function") runs uvicorn on another app factory instead, e.g. a test app with extra routes.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if factory is None:
        command = [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), *extra_args]
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(port), *extra_args]
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_until_up(f"{base}/healthz", proc, log_file, timeout=240, statuses=(200, 503))
            except RuntimeError as error:
                pytest.fail(str(error))
            yield base
        finally:
            stop(proc, timeout=20)
