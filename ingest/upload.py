"""Taking in an organisation's own document: checked whole before anything is written, then ingested as passages.

An upload comes from the internet, so every check runs before the knowledge base
is touched: the file's size, its bytes against its declared type, the format's own
traps (encrypted or corrupt PDFs, decompression bombs in PDF streams and DOCX
archives, XML entities, HTML scripts, text that is not UTF-8), its name, its doc
id, and finally a full parse into passages. Only a file that passes all of them
is kept; the embedding then runs in the background.

What is kept, under the knowledge base's data dir (visible to every worker process):

    uploads/<doc_id>/record.json   the registry entry: metadata, status, passages; replaced atomically
    uploads/<doc_id>/source.<ext>  the file as it was uploaded
    uploads/.incoming/             files being received and checked; removed when rejected

Why a rerun converges: passage ids are stable and `write_passages` makes the store
hold exactly the upload's passages (adding the missing, deleting the stale); a
record stays `queued`/`ingesting`/`deleting` until its work is finished, and
`resume_pending` finishes it. Upload passages carry `origin: "upload"`, which the
corpus ingest never prunes, and an upload can never take a corpus doc id.
Writes and removals hold the knowledge base's write lock (`KnowledgeBase.writing`), so an
upload waits for a corpus ingest in another process instead of racing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import unicodedata
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ingest.manifest import DocumentSpec, TextSpec
from ingest.parsers.html_page import parse_html
from ingest.units import ParseError, Unit
from kb.store import Match

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase
    from kb.passage import Passage

Format = Literal["pdf", "docx", "markdown", "html", "formex"]
Status = Literal["queued", "ingesting", "ready", "failed", "deleting"]
KINDS = ("regulation", "directive", "act", "contract", "guidance")
LANGUAGES = ("da", "en")
JURISDICTIONS = ("DK", "EU")
DOC_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
UPLOAD_VERSION = "upload"  # the version label of an uploaded text: one version per doc id, replaced whole
UPLOAD_WRITE_BATCH = 32  # small batches: progress shows, and a deletion stops a running ingest soon
_DOC_ID = re.compile(DOC_ID_PATTERN)

EXTENSIONS: dict[str, Format] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xml": "formex",
    ".fmx": "formex",
}
CONTENT_TYPES: dict[Format, set[str]] = {
    "pdf": {"application/pdf", "application/x-pdf"},
    "docx": {"application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    "markdown": {"text/markdown", "text/x-markdown", "text/plain"},
    "html": {"text/html", "application/xhtml+xml"},
    "formex": {"application/xml", "text/xml"},
}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
_ACTIVE_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form"}


class UploadRejected(Exception):
    """An upload refused before anything was written: the HTTP status, a stable code, the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = "file") -> None:
        self.status = status
        self.code = code
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class UploadLimits:
    """How large an upload may be, on disk and unpacked (service settings fill these in)."""

    max_bytes: int = 20 * 1024 * 1024
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    max_pages: int = 1000


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


# --- the checks, in the order the endpoint runs them --------------------------------------


def check_doc_id(doc_id: str, corpus_ids: set[str]) -> None:
    """A lowercase slug that names no corpus document."""
    if not _DOC_ID.match(doc_id or ""):
        raise UploadRejected(
            422, "invalid_doc_id", f"doc_id {doc_id!r} must match {DOC_ID_PATTERN} (lowercase letters, digits, '-')", "doc_id"
        )
    if doc_id in corpus_ids:
        raise UploadRejected(409, "doc_id_taken", f"doc_id {doc_id!r} is a corpus document; choose another id", "doc_id")


def check_filename(name: str | None) -> str:
    """The upload's file name, refused when it could address anything but itself (traversal, control characters)."""
    if not name or not name.strip():
        raise UploadRejected(422, "invalid_filename", "the file has no name", "file")
    if len(name) > 255:
        raise UploadRejected(422, "invalid_filename", "the file name is longer than 255 characters", "file")
    if "/" in name or "\\" in name or name.strip() in (".", "..") or name.startswith("."):
        raise UploadRejected(
            422, "invalid_filename", f"the file name {name!r} contains a path; send the bare file name", "file"
        )
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise UploadRejected(422, "invalid_filename", "the file name contains control characters", "file")
    return unicodedata.normalize("NFC", name)


def format_of(filename: str) -> Format:
    """The format a file name declares by its extension."""
    lower = filename.lower()
    for extension, fmt in sorted(EXTENSIONS.items(), key=lambda item: -len(item[0])):
        if lower.endswith(extension):
            return fmt
    raise UploadRejected(
        415,
        "unsupported_type",
        f"{filename!r}: unsupported file type; send one of {', '.join(sorted(EXTENSIONS))}",
        "file",
    )


def _sniff(head: bytes) -> str:
    """What the first bytes say the file is: pdf, zip, xml, html, text or binary."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if b"\x00" in head:
        return "binary"
    lower = stripped[:512].lower()
    if lower.startswith(b"<!doctype html") or b"<html" in lower[:256]:
        return "html"
    if lower.startswith(b"<"):
        return "xml"
    return "text"


_EXPECTED_SNIFF: dict[Format, set[str]] = {
    "pdf": {"pdf"},
    "docx": {"zip"},
    "markdown": {"text", "html", "xml"},  # Markdown may begin with inline HTML; checked as text below
    "html": {"html"},
    "formex": {"xml"},
}


def check_type(path: Path, filename: str, content_type: str | None) -> Format:
    """The declared type (extension and Content-Type) must agree with each other and with the bytes."""
    fmt = format_of(filename)
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in _GENERIC_TYPES and declared not in CONTENT_TYPES[fmt]:
        raise UploadRejected(
            415, "type_mismatch", f"{filename!r}: the Content-Type {declared} does not match a {fmt} file", "file"
        )
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head.strip():
        raise UploadRejected(422, "empty_file", f"{filename!r}: the file is empty", "file")
    found = _sniff(head)
    if found not in _EXPECTED_SNIFF[fmt] and not (fmt == "markdown" and found == "binary"):
        raise UploadRejected(
            415, "type_mismatch", f"{filename!r}: named a {fmt} file, but its content is {found}", "file"
        )
    if fmt == "markdown" and (found in ("pdf", "zip") or head.lstrip().lower().startswith((b"<?xml", b"<!doctype html", b"<html"))):
        raise UploadRejected(415, "type_mismatch", f"{filename!r}: named a Markdown file, but its content is {found}", "file")
    return fmt


def read_utf8(path: Path, filename: str) -> str:
    """The file as UTF-8 text (a BOM allowed); 422 not_utf8 naming the first bad byte, or binary for NUL bytes."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UploadRejected(
            422, "not_utf8", f"{filename!r}: not UTF-8 text (invalid byte at offset {exc.start}, line {line})", "file"
        ) from None
    if "\x00" in text:
        raise UploadRejected(415, "type_mismatch", f"{filename!r}: binary data (NUL bytes) in a text file", "file")
    return unicodedata.normalize("NFC", text)


def _check_pdf(path: Path, filename: str, limits: UploadLimits) -> None:
    """Open with pypdf: encrypted, corrupt, truncated or bomb-like PDFs are refused; streams are unpacked with a cap."""
    import logging

    import pypdf
    from pypdf.errors import PyPdfError
    from pypdf.generic import ArrayObject, IndirectObject, StreamObject

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    data = path.read_bytes()
    if b"%%EOF" not in data[-2048:]:
        raise UploadRejected(422, "unreadable_file", f"{filename!r}: truncated PDF (no %%EOF marker at the end)", "file")
    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted:
            raise UploadRejected(422, "encrypted_file", f"{filename!r}: encrypted PDF; upload it without a password", "file")
        pages = len(reader.pages)
        if pages == 0:
            raise UploadRejected(422, "unreadable_file", f"{filename!r}: PDF without pages", "file")
        if pages > limits.max_pages:
            raise UploadRejected(422, "too_many_pages", f"{filename!r}: {pages} pages; the limit is {limits.max_pages}", "file")
        budget = limits.max_uncompressed_bytes
        numbers = sorted({num for section in reader.xref.values() for num in section} | set(reader.xref_objStm))
        for num in numbers:
            try:
                obj = reader.get_object(IndirectObject(num, 0, reader))
            except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError):
                continue  # an object pypdf cannot read is never used by text extraction either
            if not isinstance(obj, StreamObject):
                continue
            filters = obj.get("/Filter")
            names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else ([str(filters)] if filters else [])
            raw = obj._data if hasattr(obj, "_data") else b""  # the encoded bytes, before any filter runs
            if names and names[0] in ("/FlateDecode", "/Fl"):
                budget -= _inflated_size(raw, budget + 1)
            else:
                budget -= len(raw)
            if budget < 0:
                raise UploadRejected(
                    422,
                    "decompression_bomb",
                    f"{filename!r}: its streams unpack to more than {limits.max_uncompressed_bytes} bytes "
                    "(KB_UPLOAD_MAX_UNCOMPRESSED_BYTES): refused as a possible decompression bomb",
                    "file",
                )
    except UploadRejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise UploadRejected(422, "unreadable_file", f"{filename!r}: corrupt PDF ({type(exc).__name__}: {exc})", "file") from None


def _inflated_size(raw: bytes, cap: int) -> int:
    """How many bytes a zlib stream unpacks to, counting no further than `cap` (never holding more than a chunk)."""
    decompressor = zlib.decompressobj()
    total = 0
    data = raw
    try:
        while data and total < cap:
            chunk = decompressor.decompress(data, 1024 * 1024)
            total += len(chunk)
            data = decompressor.unconsumed_tail
    except zlib.error:
        return total  # a broken stream counts for what it gave; pypdf will refuse it if it matters
    return total


def _check_xml(text: str, filename: str) -> None:
    """No DTD, no entities (external or internal), well-formed: entities are never resolved, not even to refuse them."""
    from lxml import etree

    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise UploadRejected(
            422, "xml_entities", f"{filename!r}: XML with a DOCTYPE or entity declarations is refused (entities are never resolved)", "file"
        )
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise UploadRejected(422, "unreadable_file", f"{filename!r}: not well-formed XML: {exc.msg} (line {exc.lineno})", "file") from None


def _check_html(text: str, filename: str) -> None:
    """No scripts or other active content: the document's words are taken, never its code."""
    if re.search(r"<!ENTITY", text, re.IGNORECASE):
        raise UploadRejected(422, "xml_entities", f"{filename!r}: entity declarations are refused", "file")
    try:
        root = parse_html(text)
    except ParseError as exc:
        raise UploadRejected(422, "unreadable_file", f"{filename!r}: {exc.reason}", "file") from None
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag.lower() in _ACTIVE_TAGS:
            raise UploadRejected(422, "active_content", f"{filename!r}: HTML with <{el.tag.lower()}> is refused", "file")
        for name, value in el.attrib.items():
            if name.lower().startswith("on") or re.match(r"\s*(javascript|vbscript|data):", value or "", re.IGNORECASE):
                raise UploadRejected(
                    422, "active_content", f"{filename!r}: HTML with script in the {name!r} attribute of <{el.tag}> is refused", "file"
                )


def check_content(path: Path, filename: str, fmt: Format, limits: UploadLimits) -> None:
    """The format's own traps, before any parser sees the file."""
    if fmt == "pdf":
        _check_pdf(path, filename, limits)
    elif fmt == "docx":
        from ingest.parsers.docx import check_zip

        try:
            check_zip(path, limits.max_uncompressed_bytes)
        except ParseError as exc:
            code = "decompression_bomb" if "bomb" in exc.reason else "unreadable_file"
            raise UploadRejected(422, code, f"{filename!r}: {exc.reason}", "file") from None
    else:
        text = read_utf8(path, filename)
        if fmt == "formex":
            _check_xml(text, filename)
        elif fmt == "html":
            _check_html(text, filename)
        elif re.search(r"<\s*script\b", text, re.IGNORECASE):
            raise UploadRejected(422, "active_content", f"{filename!r}: Markdown with a <script> tag is refused", "file")


# --- from a checked file to passages ------------------------------------------------------


def _units(path: Path, fmt: Format, title: str, limits: UploadLimits) -> list[Unit]:
    """The file's units, read by the parser of its format: the limits for the binary formats, the title as the
    heading of the text before the first section for Markdown and HTML."""
    from ingest.parsers import get_parser

    if fmt in ("markdown", "html"):
        options: dict[str, object] = {"front_heading": title}
    else:
        options = {"max_bytes": limits.max_bytes, "max_pages": limits.max_pages, "max_uncompressed_bytes": limits.max_uncompressed_bytes}
    return list(get_parser(fmt)([path], options))


def text_spec(record: UploadRecord) -> tuple[DocumentSpec, TextSpec]:
    """The upload described as a manifest document, so the splitter treats it like a corpus text."""
    text = TextSpec(
        language=record.language,
        version=UPLOAD_VERSION,
        valid_from=record.uploaded_at.date() if record.uploaded_at else date.today(),
        in_force=True,
        parser=record.format,
        files=[record.filename],
    )
    doc = DocumentSpec(
        doc_id=record.doc_id, title=record.title, kind=record.kind, jurisdiction=record.jurisdiction, texts=[text]
    )
    return doc, text


def parse_upload(path: Path, record: UploadRecord, max_chars: int, limits: UploadLimits) -> list[Passage]:
    """The upload's passages (origin "upload"); UploadRejected when it holds no readable text."""
    from ingest.splitter import SplitError, split_units

    doc, text = text_spec(record)
    try:
        units = _units(path, record.format, record.title, limits)  # type: ignore[arg-type]
        if not units:
            raise ParseError(path, "no text found in the file")
        passages = split_units(units, doc, text, max_chars=max_chars, origin="upload")
    except (ParseError, SplitError) as exc:
        reason = exc.reason if isinstance(exc, ParseError) else str(exc)
        raise UploadRejected(422, "unreadable_file", f"{record.filename!r}: {reason}", "file") from None
    except UploadRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's bug on hostile input is the file's fault to the client, never a 500
        raise UploadRejected(
            422, "unreadable_file", f"{record.filename!r}: cannot be read as {record.format} ({type(exc).__name__})", "file"
        ) from None
    if not passages:
        raise UploadRejected(422, "unreadable_file", f"{record.filename!r}: no text found in the file", "file")
    for passage in passages:  # the tags travel with every passage, so every worker's catalog knows them
        passage.scenarios = list(record.scenarios)
    return passages


# --- the registry -----------------------------------------------------------------------


class Uploads:
    """The uploaded documents of one knowledge base: files and records under `data_dir/uploads`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "uploads"
        self.incoming = self.root / ".incoming"

    def folder(self, doc_id: str) -> Path:
        if not _DOC_ID.match(doc_id):  # never a path outside the registry, whatever the caller passes
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
        """Take the doc id (atomically: one folder per id) and keep the checked file; 409 when the id is taken."""
        folder = self.folder(record.doc_id)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            raise UploadRejected(
                409, "doc_id_taken", f"doc_id {record.doc_id!r} is already uploaded; DELETE it first to replace it", "doc_id"
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


def corpus_doc_ids(kb: KnowledgeBase) -> set[str]:
    """Doc ids an upload may not take: the manifest's, and any non-upload document the store holds."""
    from ingest.manifest import ManifestError, load_manifest

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


def accept_upload(
    kb: KnowledgeBase,
    uploads: Uploads,
    staged: Path,
    *,
    filename: str | None,
    content_type: str | None,
    doc_id: str,
    title: str,
    kind: str,
    language: str,
    jurisdiction: str = "DK",
    scenarios: list[str] | None = None,
    uploaded_by: str,
    limits: UploadLimits,
) -> tuple[UploadRecord, list[Passage]]:
    """Every check on a received file, then the record (status queued) and the file kept: nothing is written before.

    Gives the record and the passages the file parsed into, for `ingest_upload` to embed without parsing again.
    """
    from kb.scenarios import SCENARIO_IDS

    for field, value, valid in (("kind", kind, KINDS), ("language", language, LANGUAGES), ("jurisdiction", jurisdiction, JURISDICTIONS)):
        if value not in valid:
            raise UploadRejected(422, f"invalid_{field}", f"{field} {value!r} is not one of {', '.join(valid)}", field)
    for scenario in scenarios or []:
        if scenario not in SCENARIO_IDS:
            raise UploadRejected(
                422, "invalid_scenario", f"scenario {scenario!r} is not one of {', '.join(SCENARIO_IDS)}", "scenarios"
            )
    title = re.sub(r"\s+", " ", title or "").strip()
    if not 1 <= len(title) <= 300:
        raise UploadRejected(422, "invalid_title", "title must be 1 to 300 characters", "title")
    check_doc_id(doc_id, corpus_doc_ids(kb))
    name = check_filename(filename)
    size = staged.stat().st_size
    if size > limits.max_bytes:
        raise UploadRejected(
            413, "file_too_large", f"{name!r}: {size} bytes; the limit is {limits.max_bytes} (KB_UPLOAD_MAX_BYTES)", "file"
        )
    fmt = check_type(staged, name, content_type)
    check_content(staged, name, fmt, limits)
    stamp = now()
    record = UploadRecord(
        doc_id=doc_id,
        title=title,
        kind=kind,
        language=language,
        jurisdiction=jurisdiction,
        scenarios=sorted(set(scenarios or [])),
        filename=name,
        format=fmt,
        sha256=sha256_of(staged),
        bytes=size,
        uploaded_by=uploaded_by,
        uploaded_at=stamp,
        updated_at=stamp,
    )
    passages = parse_upload(staged, record, kb.settings.max_passage_chars, limits)  # the last check: it must give passages
    return uploads.claim(record, staged), passages


# --- writing and removing passages ----------------------------------------------------------


class _Cancelled(Exception):
    """The upload was deleted while it was being ingested."""


def _where(doc_id: str) -> Match:
    """The stored passages of one upload."""
    return Match(doc_id=doc_id, origin="upload")


def ingest_upload(
    kb: KnowledgeBase,
    uploads: Uploads,
    doc_id: str,
    limits: UploadLimits | None = None,
    passages: list[Passage] | None = None,
) -> UploadRecord | None:
    """Embed and store an accepted upload's passages (parsed again unless given), then refresh the keyword index;
    idempotent, safe to rerun.

    A failure leaves none of its passages behind and the record `failed` with the reason.
    """
    from ingest.writer import write_passages

    limits = limits or UploadLimits()
    with kb.writing():  # one writer at a time, corpus ingest included
        record = uploads.get(doc_id)
        if record is None or record.status in ("deleting", "failed"):
            return record
        if record.status == "ready" and len(kb.store.hashes(_where(doc_id))) == record.passages:
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
                passages = parse_upload(uploads.source(record), record, kb.settings.max_passage_chars, limits)
            kb.store.set_embedding_model(kb.embedder.model_name)
            write_passages(kb, passages, _where(doc_id), on_embedded=progress, batch=UPLOAD_WRITE_BATCH)
            kb.refresh_keyword_index()
        except _Cancelled:
            return uploads.get(doc_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the upload; the service stays up
            kb.store.delete(list(kb.store.hashes(_where(doc_id))))
            kb.refresh_keyword_index()
            message = str(exc) if isinstance(exc, UploadRejected) else f"{type(exc).__name__}: {exc}"
            return uploads.update(doc_id, status="failed", error=message)
        return uploads.update(doc_id, status="ready", passages=len(passages), embedded=embedded)


def delete_upload(kb: KnowledgeBase, uploads: Uploads, doc_id: str) -> int:
    """Remove an upload's passages, its keyword entries and its files; a running ingest of it stops. Passages removed."""
    if uploads.update(doc_id, status="deleting") is None:
        raise KeyError(doc_id)
    with kb.writing():  # one writer at a time, corpus ingest included
        stale = list(kb.store.hashes(_where(doc_id)))
        kb.store.delete(stale)
        kb.refresh_keyword_index()
        uploads.remove(doc_id)
    return len(stale)


def resume_pending(kb: KnowledgeBase, uploads: Uploads, limits: UploadLimits | None = None) -> list[str]:
    """Finish what a killed process left: queued or half-ingested uploads, half-done deletions. The doc ids touched."""
    touched: list[str] = []
    for stale in uploads.incoming.glob("*") if uploads.incoming.is_dir() else []:
        if time.time() - stale.stat().st_mtime > 3600:  # received but never accepted (an hour: not still arriving)
            stale.unlink(missing_ok=True)
    for record in uploads.all():
        if record.status == "deleting":
            delete_upload(kb, uploads, record.doc_id)
            touched.append(record.doc_id)
        elif record.status in ("queued", "ingesting"):
            ingest_upload(kb, uploads, record.doc_id, limits)
            touched.append(record.doc_id)
    return touched


def describe(record: UploadRecord) -> dict[str, Any]:
    """The record as the API and `kb ingest --file --json` show it (who uploaded it is in the audit log only)."""
    data = json.loads(record.model_dump_json(exclude={"uploaded_by"}))
    data["origin"] = "upload"
    return data
