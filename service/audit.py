"""The audit log: one JSON line per write attempt (who, what, when, outcome), appended by every worker process.

What a line holds: `time` (UTC, ISO 8601), `who` (the API key's name, `cli:<user>` for the command line, null
when no valid key was given), `action` (upload, ingest, delete), `doc_id`, the file's `sha256` and `bytes`,
`outcome` (accepted, rejected, denied, ready, failed, deleted) and the HTTP `status` or error `code`.
What it never holds: the key, the file's name or content, question text, client addresses.

Each line is written with one `write()` on a file opened O_APPEND, so lines from several workers never
interleave.

Bounded where anyone can write to it: a refusal of a request that named no valid key (`who` null, outcome
denied) costs the client nothing, so those lines go to their own file beside it, `<name>.refused.jsonl`, which
is rotated once past KB_AUDIT_REFUSED_MAX_BYTES (the previous one kept as `.1`): at most twice that, whatever
the number of refused requests. Everything done or refused with a key (accepted, rejected, ready, failed,
deleted, and a read-only key's 403) stays in the main file, in full. `entries()` reads all of them.
With several workers rotating at once, a rotated file can be replaced early: older refusals are lost first.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


REFUSED_MAX_BYTES = 1024 * 1024


def _append(path: Path, line: bytes, max_bytes: int | None = None) -> None:
    """One `write()` to `path` opened O_APPEND (0600); past `max_bytes`, the file is first moved to `<path>.1`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if max_bytes is not None and os.fstat(fd).st_size + len(line) > max_bytes:
            os.replace(path, path.with_name(path.name + ".1"))
            os.close(fd)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, line)
    finally:
        os.close(fd)


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


class AuditLog:
    """Appends audit entries to a JSON Lines file (created 0600); anonymous refusals to a bounded one beside it."""

    def __init__(self, path: Path, refused_max_bytes: int = REFUSED_MAX_BYTES) -> None:
        self.path = Path(path)
        self.refused_path = self.path.with_name(f"{self.path.stem}.refused{self.path.suffix or '.jsonl'}")
        self.refused_max_bytes = refused_max_bytes

    def write(
        self,
        *,
        who: str | None,
        action: str,
        outcome: str,
        doc_id: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> dict[str, Any]:
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "who": who,
            "action": action,
            "doc_id": doc_id[:100] if doc_id else doc_id,
            "sha256": sha256,
            "bytes": size,
            "outcome": outcome,
            "status": status,
            "code": code,
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        if who is None and outcome == "denied":
            _append(self.refused_path, line, self.refused_max_bytes)
        else:
            _append(self.path, line)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every entry kept, the main file's and the anonymous refusals', oldest first (for tests and `kb` tooling)."""
        rotated = self.refused_path.with_name(self.refused_path.name + ".1")
        found = _read(self.path) + _read(rotated) + _read(self.refused_path)
        return sorted(found, key=lambda entry: entry["time"])
