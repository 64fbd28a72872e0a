"""What an upload must pass before anything is kept: its metadata, its name, its bytes against its declared type,
and the format's own traps, each refused with an `UploadError` naming the field.

An upload comes from the internet, so these run before the knowledge base is touched: the doc id and the other
fields against their vocabularies, the file name (no path, no control characters), the extension and
Content-Type against each other and against the first bytes, and per format: encrypted, corrupt or truncated
PDFs, decompression bombs in PDF streams (each stream inflated with a running cap, never whole) and DOCX
archives, XML with a DOCTYPE or entities (never resolved, not even to refuse them), HTML with scripts or other
active content, text that is not UTF-8. The last check, a full parse into passages, is in passages.py.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.parsers.html_page import parse_html
from ingest.units import ParseError
from ingest.uploads.errors import UploadError
from kb.settings import ServiceSettings
from kb.vocabulary import JURISDICTIONS, KINDS, LANGUAGES, SCENARIO_IDS

Format = Literal["pdf", "docx", "markdown", "html", "formex"]
DOC_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
DOC_ID = re.compile(DOC_ID_PATTERN)

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


@dataclass(frozen=True)
class UploadLimits:
    """How large an upload may be, on disk and unpacked (the service's settings fill these in)."""

    max_bytes: int = 20 * 1024 * 1024
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    max_pages: int = 1000

    @classmethod
    def of(cls, settings: ServiceSettings) -> UploadLimits:
        """The three upload limits of the service's settings (KB_UPLOAD_MAX_*)."""
        return cls(settings.upload_max_bytes, settings.upload_max_uncompressed_bytes, settings.upload_max_pages)


def check_doc_id(doc_id: str, corpus_ids: set[str]) -> None:
    """A lowercase slug that names no corpus document."""
    if not DOC_ID.match(doc_id or ""):
        raise UploadError(
            "invalid_doc_id",
            f"doc_id {doc_id!r} must match {DOC_ID_PATTERN} (lowercase letters, digits, '-')",
            "doc_id",
        )
    if doc_id in corpus_ids:
        raise UploadError("doc_id_taken", f"doc_id {doc_id!r} is a corpus document; choose another id", "doc_id")


def check_filename(name: str | None) -> str:
    """The upload's file name, refused when it could address anything but itself (traversal, control characters)."""
    if not name or not name.strip():
        raise UploadError("invalid_filename", "the file has no name")
    if len(name) > 255:
        raise UploadError("invalid_filename", "the file name is longer than 255 characters")
    if "/" in name or "\\" in name or name.strip() in (".", "..") or name.startswith("."):
        raise UploadError("invalid_filename", f"the file name {name!r} contains a path; send the bare file name")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise UploadError("invalid_filename", "the file name contains control characters")
    return unicodedata.normalize("NFC", name)


def format_of(filename: str) -> Format:
    """The format a file name declares by its extension."""
    lower = filename.lower()
    for extension, fmt in sorted(EXTENSIONS.items(), key=lambda item: -len(item[0])):
        if lower.endswith(extension):
            return fmt
    raise UploadError(
        "unsupported_type", f"{filename!r}: unsupported file type; send one of {', '.join(sorted(EXTENSIONS))}"
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
        raise UploadError("type_mismatch", f"{filename!r}: the Content-Type {declared} does not match a {fmt} file")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head.strip():
        raise UploadError("empty_file", f"{filename!r}: the file is empty")
    found = _sniff(head)
    if found not in _EXPECTED_SNIFF[fmt] and not (fmt == "markdown" and found == "binary"):
        raise UploadError("type_mismatch", f"{filename!r}: named a {fmt} file, but its content is {found}")
    if fmt == "markdown" and (found in ("pdf", "zip") or head.lstrip().lower().startswith((b"<?xml", b"<!doctype html", b"<html"))):
        raise UploadError("type_mismatch", f"{filename!r}: named a Markdown file, but its content is {found}")
    return fmt


def read_utf8(path: Path, filename: str) -> str:
    """The file as UTF-8 text (a BOM allowed); not_utf8 naming the first bad byte, or binary for NUL bytes."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UploadError(
            "not_utf8", f"{filename!r}: not UTF-8 text (invalid byte at offset {exc.start}, line {line})"
        ) from None
    if "\x00" in text:
        raise UploadError("type_mismatch", f"{filename!r}: binary data (NUL bytes) in a text file")
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
        raise UploadError("unreadable_file", f"{filename!r}: truncated PDF (no %%EOF marker at the end)")
    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted:
            raise UploadError("encrypted_file", f"{filename!r}: encrypted PDF; upload it without a password")
        pages = len(reader.pages)
        if pages == 0:
            raise UploadError("unreadable_file", f"{filename!r}: PDF without pages")
        if pages > limits.max_pages:
            raise UploadError("too_many_pages", f"{filename!r}: {pages} pages; the limit is {limits.max_pages}")
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
                raise UploadError(
                    "decompression_bomb",
                    f"{filename!r}: its streams unpack to more than {limits.max_uncompressed_bytes} bytes "
                    "(KB_UPLOAD_MAX_UNCOMPRESSED_BYTES): refused as a possible decompression bomb",
                )
    except UploadError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise UploadError("unreadable_file", f"{filename!r}: corrupt PDF ({type(exc).__name__}: {exc})") from None


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
        raise UploadError(
            "xml_entities",
            f"{filename!r}: XML with a DOCTYPE or entity declarations is refused (entities are never resolved)",
        )
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise UploadError(
            "unreadable_file", f"{filename!r}: not well-formed XML: {exc.msg} (line {exc.lineno})"
        ) from None


def _check_html(text: str, filename: str) -> None:
    """No scripts or other active content: the document's words are taken, never its code."""
    if re.search(r"<!ENTITY", text, re.IGNORECASE):
        raise UploadError("xml_entities", f"{filename!r}: entity declarations are refused")
    try:
        root = parse_html(text)
    except ParseError as exc:
        raise UploadError("unreadable_file", f"{filename!r}: {exc.reason}") from None
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag.lower() in _ACTIVE_TAGS:
            raise UploadError("active_content", f"{filename!r}: HTML with <{el.tag.lower()}> is refused")
        for name, value in el.attrib.items():
            if name.lower().startswith("on") or re.match(r"\s*(javascript|vbscript|data):", value or "", re.IGNORECASE):
                raise UploadError(
                    "active_content",
                    f"{filename!r}: HTML with script in the {name!r} attribute of <{el.tag}> is refused",
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
            raise UploadError(code, f"{filename!r}: {exc.reason}") from None
    else:
        text = read_utf8(path, filename)
        if fmt == "formex":
            _check_xml(text, filename)
        elif fmt == "html":
            _check_html(text, filename)
        elif re.search(r"<\s*script\b", text, re.IGNORECASE):
            raise UploadError("active_content", f"{filename!r}: Markdown with a <script> tag is refused")


def check_fields(kind: str, language: str, jurisdiction: str, scenarios: list[str], title: str) -> str:
    """The metadata sent with the file, each against its vocabulary; the title with its whitespace collapsed."""
    for field, value, valid in (("kind", kind, KINDS), ("language", language, LANGUAGES), ("jurisdiction", jurisdiction, JURISDICTIONS)):
        if value not in valid:
            raise UploadError(f"invalid_{field}", f"{field} {value!r} is not one of {', '.join(valid)}", field)
    for scenario in scenarios:
        if scenario not in SCENARIO_IDS:
            raise UploadError(
                "invalid_scenario", f"scenario {scenario!r} is not one of {', '.join(SCENARIO_IDS)}", "scenarios"
            )
    title = re.sub(r"\s+", " ", title or "").strip()
    if not 1 <= len(title) <= 300:
        raise UploadError("invalid_title", "title must be 1 to 300 characters", "title")
    return title
