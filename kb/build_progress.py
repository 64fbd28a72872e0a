"""The build's progress file: written by the ingest (any process), read by `/healthz`, `kb stats` and the pages.

The ingest stores every text for keyword search first, then embeds text by text (ingest/pipeline.py). While it
does, it rewrites `KB_DATA_DIR/build-progress.json` atomically (written beside, then renamed) on every batch, so
a reader in another process never sees half a file. The file says how far the build is (passages with a vector of
the total), which text it embeds now and how long it will take; `state` is `building`, `done` or `failed`, and a
reader turns `building` into `interrupted` when the process that wrote it is gone (a killed build; the next
`kb serve` or `kb ingest` resumes it).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

BuildState = Literal["building", "interrupted", "done", "failed"]


class BuildProgress(BaseModel):
    """How far a build of the knowledge base is."""

    state: BuildState
    phase: Literal["keyword_index", "embedding", "done"] = Field(
        description="keyword_index: texts are parsed and stored for keyword search; embedding: vectors fill in"
    )
    pid: int = Field(description="The building process")
    started_at: str
    updated_at: str
    texts: int = Field(description="Texts in the build")
    texts_done: int = 0
    passages: int = Field(default=0, description="Passages of those texts (known once the keyword index is built)")
    embedded: int = Field(default=0, description="Of them, passages with their vector")
    current_text: str | None = Field(default=None, description="The text being embedded (doc/language/version)")
    seconds_left: float | None = Field(default=None, description="Estimated from this build's rate so far")
    tokens_per_s: float | None = None
    error: str | None = None

    @property
    def percent(self) -> int:
        """Passages with a vector, in whole percent of all (0 until the passages are counted, 100 when done)."""
        if self.state == "done":
            return 100
        return int(100 * self.embedded / self.passages) if self.passages else 0

    def summary(self) -> dict[str, Any]:
        """The object `/healthz` and `kb stats --json` show under `build`."""
        return self.model_dump(exclude={"pid", "started_at"}) | {"percent": self.percent}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:  # a dead child not yet reaped by its parent is still listed: a zombie is not building
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def read_build_progress(path: Path) -> BuildProgress | None:
    """The last build's progress, or None when no build wrote one (or the file cannot be read)."""
    try:
        progress = BuildProgress.model_validate(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None
    if progress.state == "building" and not _alive(progress.pid):
        progress.state = "interrupted"
        progress.seconds_left = None
    return progress


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def announce_build(path: Path, pid: int) -> None:
    """Say at once that process `pid` is starting a build (it rewrites the file itself once it holds the write lock),
    unless a live build is already recorded there: `/healthz` then shows the build from the first second."""
    current = read_build_progress(path)
    if current is not None and current.state == "building":
        return
    writer = BuildProgressFile(path)
    writer._state["pid"] = pid
    writer._write(force=True)


class BuildProgressFile:
    """Writes the progress file as the ingest goes (the ingest's `Progress` protocol, ingest/pipeline.py)."""

    def __init__(self, path: Path, min_interval_s: float = 0.5) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self._written = 0.0
        self._state: dict[str, Any] = {
            "state": "building",
            "phase": "keyword_index",
            "pid": os.getpid(),
            "started_at": _now(),
            "updated_at": _now(),
            "texts": 0,
        }
        self._base = 0  # passages with a vector before the current text
        self._in_text = 0  # embedded so far in the current text
        self._to_embed = 0  # what the current text needs
        self._embedded_run = 0  # embedded by this build (for the rate)
        self._tokens_run = 0
        self._embedding_started: float | None = None

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.min_interval_s:
            return
        self._written = now
        self._state["updated_at"] = _now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._state, ensure_ascii=False))
        os.replace(tmp, self.path)

    # --- the ingest's Progress protocol -------------------------------------------------

    def texts(self, total: int) -> None:
        self._state["texts"] = total
        self._write(force=True)

    def indexed(self, passages: int, to_embed: int) -> None:
        """Every text is stored and keyword-indexed: `to_embed` of `passages` still need a vector."""
        self._state.update(phase="embedding", passages=passages, embedded=passages - to_embed)
        self._base = passages - to_embed
        self._embedding_started = time.monotonic()
        self._write(force=True)

    def text_started(self, key: str, to_embed: int) -> None:
        self._to_embed, self._in_text = to_embed, 0
        self._state["current_text"] = key
        self._write(force=True)

    def embedded(self, count: int, tokens: int) -> None:
        self._in_text += count
        self._embedded_run += count
        self._tokens_run += tokens
        self._state["embedded"] = self._base + min(self._in_text, self._to_embed)
        if self._embedding_started is not None:
            elapsed = max(time.monotonic() - self._embedding_started, 1e-6)
            rate = self._embedded_run / elapsed
            left = max(self._state.get("passages", 0) - self._state["embedded"], 0)
            self._state["seconds_left"] = round(left / rate, 1) if rate > 0 else None
            self._state["tokens_per_s"] = round(self._tokens_run / elapsed, 1)
        self._write()

    def text_done(self, report: Any) -> None:
        self._state["texts_done"] = self._state.get("texts_done", 0) + 1
        if self._state["phase"] == "embedding":
            self._base += self._to_embed
            self._to_embed = self._in_text = 0
            self._state["embedded"] = self._base
        self._write(force=True)

    # --- the end ------------------------------------------------------------------------

    def finished(self, error: str | None = None) -> None:
        """The build ended: done, or failed with `error` (a text that failed to parse is not a failed build)."""
        self._state.update(state="failed" if error else "done", current_text=None, seconds_left=None, error=error)
        if not error:
            self._state.update(phase="done", embedded=self._state.get("passages", 0))
        self._write(force=True)
