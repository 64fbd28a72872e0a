"""Taking in an organisation's own document, and taking it out again: the one flow behind `POST/DELETE
/api/documents` and `kb ingest --file/--remove`.

An upload is checked whole before anything is kept (checks.py, then a full parse in passages.py); only a file
that passes is claimed in the registry (registry.py), and its passages are then embedded (in the background for
the API). Every write attempt is written to the audit log here, so both faces log the same.

Why a rerun converges: passage ids are stable and `write_passages` makes the store hold exactly the upload's
passages (adding the missing, deleting the stale); a record stays `queued`/`ingesting`/`deleting` until its work
is finished, and `resume` finishes it. Upload passages carry `origin: "upload"`, which the corpus ingest never
prunes, and an upload can never take a corpus doc id. Writes and removals hold the knowledge base's write lock
(`KnowledgeBase.writing`), so an upload waits for a corpus ingest in another process instead of racing it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ingest.manifest import ManifestError, load_manifest
from ingest.uploads.checks import UploadLimits, check_content, check_doc_id, check_fields, check_filename, check_type
from ingest.uploads.errors import UploadError
from ingest.uploads.passages import parse_upload
from ingest.uploads.registry import UploadRecord, Uploads, now, sha256_of
from ingest.writer import write_passages
from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.passage import Passage

UPLOAD_WRITE_BATCH = 32  # small batches: progress shows, and a deletion stops a running ingest soon
_BLOCK = 1024 * 1024


class AuditTrail(Protocol):
    """Where write attempts are recorded (service/audit.py's `AuditLog`)."""

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
    ) -> Any: ...


# The status an outcome was answered with, for the audit entry's `status` (outcome, error code -> status or None).
StatusOf = Callable[[str, str | None], int | None]


@dataclass(frozen=True)
class DocumentFields:
    """What the uploader says about the file: its new doc id, title, kind, language, jurisdiction and scenarios."""

    doc_id: str
    title: str
    kind: str
    language: str
    jurisdiction: str = "DK"
    scenarios: tuple[str, ...] = ()


class _Cancelled(Exception):
    """The upload was deleted while it was being ingested."""


def corpus_doc_ids(kb: KnowledgeBase) -> set[str]:
    """Doc ids an upload may not take: the manifest's, and any non-upload document the store holds."""
    ids: set[str] = set()
    try:
        ids |= {d.doc_id for d in load_manifest(kb.settings.manifest_path).documents}
    except ManifestError:
        pass
    try:
        catalog = kb.catalog
    except Exception:  # noqa: BLE001 - an unbuilt knowledge base holds no documents yet
        catalog = {"documents": {}}
    ids |= {doc_id for doc_id, doc in catalog["documents"].items() if doc.get("origin", "corpus") != "upload"}
    return ids


def _scope(doc_id: str) -> Match:
    """The stored passages of one upload."""
    return Match(doc_id=doc_id, origin="upload")


class UploadService:
    """The uploads of one knowledge base: accept, ingest, replace, delete, resume; each write attempt audited.

    `status_of` gives the status an outcome stands for, recorded in the audit entry (the API's HTTP status);
    without an `audit`, nothing is recorded.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        limits: UploadLimits | None = None,
        audit: AuditTrail | None = None,
        status_of: StatusOf = lambda outcome, code: None,
    ) -> None:
        self.kb = kb
        self.limits = limits or UploadLimits()
        self.audit = audit
        self.status_of = status_of
        self.registry = Uploads(kb.settings.data_dir)

    def _audit(self, who: str | None, action: str, outcome: str, doc_id: str | None, **fields: Any) -> None:
        if self.audit is not None:
            status = self.status_of(outcome, fields.get("code"))
            self.audit.write(who=who, action=action, outcome=outcome, doc_id=doc_id, status=status, **fields)

    def _refused(self, who: str, action: str, doc_id: str | None, error: UploadError, size: int | None = None) -> UploadError:
        self._audit(who, action, "rejected", doc_id, size=size, code=error.code)
        return error

    # --- taking a file in --------------------------------------------------------------------

    def accept(
        self, stream: BinaryIO, *, filename: str | None, content_type: str | None, fields: DocumentFields, who: str
    ) -> tuple[UploadRecord, list[Passage]]:
        """Receive a file (refused once past the size limit), check it whole, keep it with its record (queued).

        Gives the record and the passages the file parsed into, for `ingest` to embed without parsing again.
        """
        with self.registry.staged() as staged:
            size = 0
            try:
                with staged.open("wb") as out:
                    while block := stream.read(_BLOCK):
                        size += len(block)
                        if size > self.limits.max_bytes:
                            raise UploadError(
                                "file_too_large",
                                f"the file is larger than the limit of {self.limits.max_bytes} bytes (KB_UPLOAD_MAX_BYTES)",
                            )
                        out.write(block)
                record, passages = self._accept_staged(staged, filename, content_type, fields, who)
            except UploadError as exc:
                raise self._refused(who, "upload", fields.doc_id, exc, size) from None
        self._audit(who, "upload", "accepted", fields.doc_id, sha256=record.sha256, size=record.bytes)
        return record, passages

    def accept_file(self, path: Path, fields: DocumentFields, who: str) -> tuple[UploadRecord, list[Passage]]:
        """`accept` for a file on this machine: its size is known before it is read."""
        size = path.stat().st_size
        if size > self.limits.max_bytes:
            error = UploadError("file_too_large", f"{path.name}: larger than {self.limits.max_bytes} bytes (KB_UPLOAD_MAX_BYTES)")
            raise self._refused(who, "upload", fields.doc_id, error, size)
        with self.registry.staged() as staged:
            shutil.copyfile(path, staged)
            try:
                record, passages = self._accept_staged(staged, path.name, None, fields, who)
            except UploadError as exc:
                raise self._refused(who, "upload", fields.doc_id, exc, size) from None
        self._audit(who, "upload", "accepted", fields.doc_id, sha256=record.sha256, size=record.bytes)
        return record, passages

    def _accept_staged(
        self, staged: Path, filename: str | None, content_type: str | None, fields: DocumentFields, who: str
    ) -> tuple[UploadRecord, list[Passage]]:
        """Every check on a received file, then the record (status queued) and the file kept: nothing is written before."""
        title = check_fields(fields.kind, fields.language, fields.jurisdiction, list(fields.scenarios), fields.title)
        check_doc_id(fields.doc_id, corpus_doc_ids(self.kb))
        name = check_filename(filename)
        size = staged.stat().st_size
        if size > self.limits.max_bytes:
            raise UploadError(
                "file_too_large", f"{name!r}: {size} bytes; the limit is {self.limits.max_bytes} (KB_UPLOAD_MAX_BYTES)"
            )
        fmt = check_type(staged, name, content_type)
        check_content(staged, name, fmt, self.limits)
        stamp = now()
        record = UploadRecord(
            doc_id=fields.doc_id,
            title=title,
            kind=fields.kind,
            language=fields.language,
            jurisdiction=fields.jurisdiction,
            scenarios=sorted(set(fields.scenarios)),
            filename=name,
            format=fmt,
            sha256=sha256_of(staged),
            bytes=size,
            uploaded_by=who,
            uploaded_at=stamp,
            updated_at=stamp,
        )
        passages = parse_upload(staged, record, self.kb.settings.max_passage_chars, self.limits)  # the last check
        return self.registry.claim(record, staged), passages

    def put_file(self, path: Path, fields: DocumentFields, who: str, replace: bool = False) -> UploadRecord | None:
        """`kb ingest --file`: take in a file on this machine and ingest it now. The same file again finishes what
        an earlier run left (a kill, a failure); another file under the same doc id only with `replace`."""
        existing = self.registry.get(fields.doc_id)
        if existing is not None and existing.sha256 != sha256_of(path):
            if not replace:
                error = UploadError(
                    "replace_needed", f"doc_id {fields.doc_id!r} is already uploaded with another file", "doc_id"
                )
                raise self._refused(who, "upload", fields.doc_id, error)
            self.delete(fields.doc_id, who)
            existing = None
        passages: list[Passage] | None = None  # the same file again: parsed anew
        if existing is None:
            _, passages = self.accept_file(path, fields, who)
        elif existing.status == "failed":
            self.registry.update(fields.doc_id, status="queued", error=None)
        return self.ingest(fields.doc_id, passages)

    # --- writing and removing passages -------------------------------------------------------

    def ingest(self, doc_id: str, passages: list[Passage] | None = None) -> UploadRecord | None:
        """Embed and store an accepted upload's passages; audited once it is ready or failed."""
        return self.ingest_all([(doc_id, passages)])[0]

    def ingest_all(self, uploads: Sequence[tuple[str, list[Passage] | None]]) -> list[UploadRecord | None]:
        """Embed and store accepted uploads in the order given, then rebuild the keyword index once for all of them
        (on the whole corpus a rebuild takes seconds, more than embedding a small document: uploads that queued
        behind a writer would each pay it). Each is audited once it is ready or failed."""
        records = self._ingest_all(uploads)
        for record in records:
            if record is not None and record.status in ("ready", "failed"):
                self._audit(
                    record.uploaded_by,
                    "ingest",
                    record.status,
                    record.doc_id,
                    sha256=record.sha256,
                    size=record.bytes,
                    code="ingest_failed" if record.status == "failed" else None,
                )
        return records

    def _ingest_all(self, uploads: Sequence[tuple[str, list[Passage] | None]]) -> list[UploadRecord | None]:
        """Under the write lock: each upload's passages stored, one keyword index refresh, then each record `ready`
        (only then can search find it). Idempotent, safe to rerun; a failure leaves none of that upload's passages
        behind and its record `failed` with the reason, and does not stop the others."""
        kb = self.kb
        with kb.writing():  # one writer at a time, corpus ingest included
            outcomes = [self._write(doc_id, passages) for doc_id, passages in uploads]
            if any(isinstance(o, int) or (o is not None and o.status == "failed") for o in outcomes):
                try:
                    kb.refresh_keyword_index()  # stored passages are searchable, a failed upload's stale ones gone
                except Exception as exc:  # noqa: BLE001 - none of them can be found: each is failed, with the reason
                    outcomes = [self._failed(doc_id, exc) if isinstance(o, int) else o for (doc_id, _), o in zip(uploads, outcomes, strict=True)]
            return [self._ready(doc_id, o) if isinstance(o, int) else o for (doc_id, _), o in zip(uploads, outcomes, strict=True)]

    def _failed(self, doc_id: str, exc: Exception) -> UploadRecord | None:
        """None of the upload's passages left in the store, its record `failed` with the reason."""
        self.kb.store.delete(list(self.kb.store.hashes(_scope(doc_id))))
        message = str(exc) if isinstance(exc, UploadError) else f"{type(exc).__name__}: {exc}"
        return self.registry.update(doc_id, status="failed", error=message)

    def _ready(self, doc_id: str, passages: int) -> UploadRecord | None:
        """The record `ready` with its passage count, unless a deletion came meanwhile (it waits for the lock)."""
        record = self.registry.get(doc_id)
        if record is None or record.status == "deleting":
            return record
        return self.registry.update(doc_id, status="ready", passages=passages)

    def _write(self, doc_id: str, passages: list[Passage] | None) -> UploadRecord | int | None:
        """One upload's passages embedded and stored (parsed again unless given), under the caller's write lock:
        how many, or the record when there is nothing to do (gone, deleting, failed, already ready) or it failed."""
        kb, uploads = self.kb, self.registry
        record = uploads.get(doc_id)
        if record is None or record.status in ("deleting", "failed"):
            return record
        if record.status == "ready" and len(kb.store.hashes(_scope(doc_id))) == record.passages:
            return record
        record = uploads.update(doc_id, status="ingesting", error=None, embedded=0)
        assert record is not None
        embedded = 0

        def progress(count: int, _tokens: int) -> None:
            nonlocal embedded
            embedded += count
            current = uploads.update(doc_id, embedded=embedded)
            if current is None or current.status == "deleting":
                raise _Cancelled(doc_id)

        try:
            if passages is None:
                passages = parse_upload(uploads.source(record), record, kb.settings.max_passage_chars, self.limits)
            kb.store.set_embedding_model(kb.embedder.model_name)
            write_passages(kb, passages, _scope(doc_id), on_embedded=progress, batch=UPLOAD_WRITE_BATCH)
        except _Cancelled:
            return uploads.get(doc_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the upload; the service stays up
            return self._failed(doc_id, exc)
        return len(passages)

    def delete(self, doc_id: str, who: str) -> int:
        """Remove an uploaded document: its passages, keyword entries and files (a running ingest of it stops).
        The number of passages removed; UploadError for a corpus document or an unknown id."""
        record = self.registry.get(doc_id)
        if record is None:
            if doc_id in corpus_doc_ids(self.kb):
                error = UploadError(
                    "corpus_document", f"{doc_id!r} is a corpus document: remove it from the manifest instead", "doc_id"
                )
            else:
                error = UploadError("unknown_document", f"no uploaded document with id {doc_id!r}", "doc_id")
            raise self._refused(who, "delete", doc_id, error)
        try:
            removed = self._remove(doc_id)
        except KeyError:  # deleted by another request meanwhile
            raise UploadError("unknown_document", f"no uploaded document with id {doc_id!r}", "doc_id") from None
        self._audit(who, "delete", "deleted", doc_id, sha256=record.sha256, size=record.bytes)
        return removed

    def _remove(self, doc_id: str) -> int:
        """The passages and files of an upload; KeyError when it is not (or no longer) in the registry."""
        if self.registry.update(doc_id, status="deleting") is None:
            raise KeyError(doc_id)
        with self.kb.writing():  # one writer at a time, corpus ingest included
            stale = list(self.kb.store.hashes(_scope(doc_id)))
            self.kb.store.delete(stale)
            self.kb.refresh_keyword_index()
            self.registry.remove(doc_id)
        return len(stale)

    def resume(self) -> list[str]:
        """Finish what a killed process left: queued or half-ingested uploads, half-done deletions. The doc ids
        touched. Not audited: the attempt was, when it was made."""
        touched: list[str] = []
        incoming = self.registry.incoming
        for stale in incoming.glob("*") if incoming.is_dir() else []:
            if time.time() - stale.stat().st_mtime > 3600:  # received but never accepted (an hour: not still arriving)
                stale.unlink(missing_ok=True)
        pending: list[tuple[str, list[Passage] | None]] = []
        for record in sorted(self.registry.all(), key=lambda r: r.uploaded_at):
            if record.status == "deleting":
                self._remove(record.doc_id)
                touched.append(record.doc_id)
            elif record.status in ("queued", "ingesting"):
                pending.append((record.doc_id, None))
                touched.append(record.doc_id)
        if pending:
            self._ingest_all(pending)
        return touched
