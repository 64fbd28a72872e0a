"""The audit log: one JSON line per write attempt (who, what, when, outcome), appended by every worker process.

What a line holds: `time` (UTC, ISO 8601), `who` (the API key's name, `cli:<user>` for the command line, null
when no valid key was given), `action` (upload, ingest, delete), `doc_id`, the file's `sha256` and `bytes`,
`outcome` (accepted, rejected, denied, ready, failed, deleted) and the HTTP `status` or error `code`.
What it never holds: the key, the file's name or content, question text, client addresses.

Each line is written with one `write()` on a file opened O_APPEND, so lines from several workers never
interleave.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLog:
    """Appends audit entries to a JSON Lines file (created 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, oldest first (for tests and `kb` tooling)."""
        try:
            return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []
