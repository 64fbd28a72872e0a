"""A real Chroma server for tests and benchmarks: `chroma run` on a free loopback port with its own folder.

It can be stopped and started again on the same port and folder, as an operator would restart it, so a test
can check what the service does while the store is away and that it recovers when it returns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from eval.servers import free_port


def chroma_command() -> str:
    """The `chroma` CLI of this environment (beside the running Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` command is not installed (it comes with the chromadb package)")
    return found


class ChromaServer:
    """`chroma run --path PATH --host 127.0.0.1 --port PORT`, its output in `log_file`."""

    def __init__(self, path: Path, log_file: Path, port: int | None = None) -> None:
        self.path = path
        self.log_file = log_file
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v2/heartbeat", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def start(self, timeout: float = 60) -> Self:
        """Start the server and wait until its heartbeat answers."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False", NO_COLOR="1")
        with self.log_file.open("a") as log:
            self.process = subprocess.Popen(
                [chroma_command(), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the server and nothing else
            )
        deadline = time.monotonic() + timeout
        while not self.alive():
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}:\n{self.log_file.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chroma run did not answer within {timeout} s:\n{self.log_file.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def stop(self, timeout: float = 20) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait until its port refuses connections."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
