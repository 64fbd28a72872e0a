"""Child servers on loopback (`kb serve`, `chroma run`) for the benchmarks and the tests: a free port, waiting until
the server answers, stopping it. One copy, so a benchmark and a test wait for a server the same way."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return f"; the end of {log}:\n{log.read_text(errors='replace')[-3000:]}"


def wait_until_up(
    url: str, proc: subprocess.Popen, log: Path | None = None, timeout: float = 240, statuses: Collection[int] = (200,)
) -> None:
    """Return once `url` answers with one of `statuses`; a RuntimeError with the end of the log if `proc`
    exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}{_log_tail(log)}")
        try:
            if httpx.get(url, timeout=5).status_code in statuses:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s{_log_tail(log)}")
        time.sleep(0.3)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if the server has not ended within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
