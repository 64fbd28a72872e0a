"""Reading a source file as text, for every parser of a text format: one read, one set of errors, one wording.

A file that cannot be read, is empty (or only whitespace), is not UTF-8 or holds NUL bytes (binary data under a
text name) stops with a ParseError naming the file and, where there is one, the line. A byte-order mark is dropped.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from ingest.units import ParseError


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ParseError when it cannot be read or holds nothing but whitespace."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ParseError(path, "cannot read file: file not found") from None
    except OSError as exc:
        raise ParseError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise ParseError(path, "empty file")
    return data


def read_text(path: Path) -> str:
    """The file as text: UTF-8, its byte-order mark dropped; ParseError when unreadable, empty, not UTF-8 or binary."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(path, f"not UTF-8 text (byte {exc.start})", line=line) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ParseError(path, "binary data (NUL bytes) in a text file", line=line)
    return text


def read_normalised(path: Path) -> str:
    """`read_text`, NFC-normalised: contracts and pages converted from PDF or HTML mix composed and decomposed letters."""
    return unicodedata.normalize("NFC", read_text(path))
