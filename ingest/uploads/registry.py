"""The on-disk registry of uploaded documents, under the knowledge base's data dir (visible to every worker process):

    uploads/<doc_id>/record.json   the registry entry: metadata, status, passages; replaced atomically
    uploads/<doc_id>/source.<ext>  the file as it was uploaded
    uploads/.incoming/             files being received and checked; removed when rejected

A record stays `queued`/`ingesting`/`deleting` until its work is finished, so a process killed in between leaves
an entry that says what is left to do (`UploadService.resume`). A doc id is taken by creating its folder, which
only one process can do.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ingest.uploads.checks import DOC_ID
from ingest.uploads.errors import UploadError

Status = Literal["queued", "ingesting", "ready", "failed", "deleting"]


class UploadRecord(BaseModel):
    """One uploaded document in the registry."""

    doc_id: str
    title: str
    kind: str
    language: str
    jurisdiction: str = "DK"
    scenarios: list[str] = Field(default_factory=list)
    filename: str
    format: str
    sha256: str
    bytes: int
    status: Status = "queued"
    error: str | None = None
    passages: int = 0
    embedded: int = 0
    uploaded_by: str
    uploaded_at: datetime
    updated_at: datetime


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Uploads:
    """The uploaded documents of one knowledge base: files and records under `data_dir/uploads`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "uploads"
        self.incoming = self.root / ".incoming"

    def folder(self, doc_id: str) -> Path:
        if not DOC_ID.match(doc_id):  # never a path outside the registry, whatever the caller passes
            raise KeyError(doc_id)
        return self.root / doc_id

    def source(self, record: UploadRecord) -> Path:
        return self.folder(record.doc_id) / f"source.{record.format}"

    def get(self, doc_id: str) -> UploadRecord | None:
        try:
            return UploadRecord.model_validate_json((self.folder(doc_id) / "record.json").read_text())
        except (KeyError, FileNotFoundError, NotADirectoryError):
            return None

    def all(self) -> list[UploadRecord]:
        if not self.root.is_dir():
            return []
        records = (self.get(p.name) for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith("."))
        return [r for r in records if r is not None]

    def save(self, record: UploadRecord) -> UploadRecord:
        record.updated_at = now()
        target = self.folder(record.doc_id) / "record.json"
        tmp = target.with_name(f"record.{uuid.uuid4().hex}.tmp")
        tmp.write_text(record.model_dump_json(indent=1))
        os.replace(tmp, target)
        return record

    def update(self, doc_id: str, **changes: Any) -> UploadRecord | None:
        """Re-read the record and change fields; None when it is gone (deleted meanwhile)."""
        record = self.get(doc_id)
        if record is None:
            return None
        return self.save(record.model_copy(update=changes))

    @contextmanager
    def staged(self) -> Iterator[Path]:
        """A fresh file to receive an upload in; removed afterwards unless `claim` moved it away."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        path = self.incoming / uuid.uuid4().hex
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def claim(self, record: UploadRecord, staged: Path) -> UploadRecord:
        """Take the doc id (atomically: one folder per id) and keep the checked file; doc_id_taken when the id is taken."""
        folder = self.folder(record.doc_id)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            raise UploadError(
                "doc_id_taken", f"doc_id {record.doc_id!r} is already uploaded; DELETE it first to replace it", "doc_id"
            ) from None
        try:
            os.replace(staged, self.source(record))
            self.save(record)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return record

    def remove(self, doc_id: str) -> None:
        """The files and the record; the record goes last, so a crash leaves the entry to finish deleting."""
        folder = self.folder(doc_id)
        for path in sorted(folder.glob("*")):
            if path.name != "record.json":
                path.unlink(missing_ok=True)
        (folder / "record.json").unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(record: UploadRecord) -> dict[str, Any]:
    """The record as the API and `kb ingest --file --json` show it (who uploaded it is in the audit log only)."""
    data = json.loads(record.model_dump_json(exclude={"uploaded_by"}))
    data["origin"] = "upload"
    return data
