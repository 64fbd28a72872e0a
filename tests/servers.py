"""Real servers for tests: `kb serve` (uvicorn) on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            deadline = time.monotonic() + 240
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the server exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=5).status_code in (200, 503):
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not come up:\n{log_file.read_text()[-3000:]}")
                time.sleep(0.5)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
