"""From a checked upload to its passages: the file read by the parser registered for its format, then split like
a corpus text (the upload described as a manifest document), every passage tagged `origin: "upload"`.

This is the last check of an upload: a file that gives no passages is refused before it is kept.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ingest.manifest import DocumentSpec, TextSpec
from ingest.parsers import get_parser
from ingest.splitter import SplitError, split_units
from ingest.units import ParseError, Unit
from ingest.uploads.checks import UploadLimits
from ingest.uploads.errors import UploadError
from ingest.uploads.registry import UploadRecord
from kb.passage import Passage

UPLOAD_VERSION = "upload"  # the version label of an uploaded text: one version per doc id, replaced whole


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


def _units(path: Path, record: UploadRecord, limits: UploadLimits) -> list[Unit]:
    """The file's units, read by the parser of its format: the limits for the binary formats, the title as the
    heading of the text before the first section for Markdown and HTML."""
    if record.format in ("markdown", "html"):
        options: dict[str, object] = {"front_heading": record.title}
    else:
        options = {"max_bytes": limits.max_bytes, "max_pages": limits.max_pages, "max_uncompressed_bytes": limits.max_uncompressed_bytes}
    return list(get_parser(record.format)([path], options))


def parse_upload(path: Path, record: UploadRecord, max_chars: int, limits: UploadLimits) -> list[Passage]:
    """The upload's passages (origin "upload"); UploadError unreadable_file when it holds no readable text."""
    doc, text = text_spec(record)
    try:
        units = _units(path, record, limits)
        if not units:
            raise ParseError(path, "no text found in the file")
        passages = split_units(units, doc, text, max_chars=max_chars, origin="upload")
    except (ParseError, SplitError) as exc:
        reason = exc.reason if isinstance(exc, ParseError) else str(exc)
        raise UploadError("unreadable_file", f"{record.filename!r}: {reason}") from None
    except UploadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's bug on hostile input is the file's fault to the client, never a 500
        raise UploadError(
            "unreadable_file", f"{record.filename!r}: cannot be read as {record.format} ({type(exc).__name__})"
        ) from None
    if not passages:
        raise UploadError("unreadable_file", f"{record.filename!r}: no text found in the file")
    for passage in passages:  # the tags travel with every passage, so every worker's catalog knows them
        passage.scenarios = list(record.scenarios)
    return passages
