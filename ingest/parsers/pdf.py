"""PDF documents read with pypdf: one unit per page, `page-<n>`.

Headings in PDFs are not reliably detectable from extracted text (the HLEG
guidelines restart their numbering in every chapter and set headings in the
same text stream as body lines), so the parser gives pages, which a reader can
always find again. Every paragraph keeps its page. Running headers/footers and
page numbers are dropped, lines are re-joined into paragraphs, and words
hyphenated across a line end are re-joined.

Refused with ParseError: empty, corrupt, truncated or encrypted files, and files
above `max_pages` (default 2000) or `max_bytes` (default 500 MB).
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._clauses import normalize
from ingest.parsers._text import read_bytes
from ingest.units import Paragraph, ParseError, Unit

DEFAULT_MAX_PAGES = 2000
DEFAULT_MAX_BYTES = 500 * 1024 * 1024
_PAGE_NO = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
_BULLET = re.compile(r"^[\uf0b7\uf0a7\u2022\u25aa\u25cf\u25e6\u2023\u2043\uf076\uf0d8-]\s*")
_NUMBERED_START = re.compile(
    r"^(?:\(?[ivx]+\)|\(?[a-z]\)|\d{1,2}(?:\.\d{1,2})*\.?\s|[IVX]+\.\s|[A-D]\.\s|Chapter\s+[IVX]+)"
)


def _read(path: Path, options: dict[str, Any]) -> list[str]:
    """Text of every page; ParseError for files pypdf cannot, or must not, read."""
    import pypdf
    from pypdf.errors import PdfReadError

    data = read_bytes(path)
    max_bytes = int(options.get("max_bytes", DEFAULT_MAX_BYTES))
    if len(data) > max_bytes:
        raise ParseError(path, f"file of {len(data)} bytes exceeds max_bytes={max_bytes}")
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ParseError(path, "not a PDF file (no %PDF header)")
    if b"%%EOF" not in data[-2048:]:
        raise ParseError(path, "truncated PDF (no %%EOF marker at the end)")
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ParseError(path, "encrypted PDF: cannot be read without its password")
        count = len(reader.pages)
        max_pages = int(options.get("max_pages", DEFAULT_MAX_PAGES))
        if count == 0:
            raise ParseError(path, "PDF without pages")
        if count > max_pages:
            raise ParseError(path, f"{count} pages exceed max_pages={max_pages}")
        return [page.extract_text() or "" for page in reader.pages]
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise ParseError(path, f"corrupt PDF: {type(exc).__name__}: {exc}") from None


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Lines that open or close many pages: running headers and footers."""
    edge: Counter[str] = Counter()
    for lines in pages:
        for line in set(lines[:2] + lines[-2:]):
            edge[line] += 1
    limit = max(3, len(pages) // 4)
    return {line for line, n in edge.items() if n >= limit and not _PAGE_NO.match(line)}


def _dehyphenate(left: str, right: str, vocabulary: set[str]) -> str:
    """Join "socio-" + "technical": drop the hyphen only when the joined word occurs in the document."""
    m_left = re.search(r"(\w+)-$", left)
    m_right = re.match(r"(\w+)", right)
    if m_left and m_right and right[:1].islower():
        joined = (m_left.group(1) + m_right.group(1)).lower()
        if joined in vocabulary:
            return left[:-1] + right
        return left + right
    if m_left and right[:1].isupper():
        return left + right  # "High-" + "Level"
    return f"{left} {right}"


def _paragraphs(lines: list[str], vocabulary: set[str]) -> list[str]:
    """Lines of one page re-joined into paragraphs.

    A paragraph ends at a blank line, after a line that ends a sentence well short
    of the page's line width, or before a bullet or a numbered heading/item.
    """
    width = max((len(line) for line in lines), default=80)
    paragraphs: list[str] = []
    current = ""
    previous = ""
    for line in lines:
        if not line:
            if current:
                paragraphs.append(current)
            current, previous = "", ""
            continue
        bullet = _BULLET.match(line)
        starts_new = bool(bullet) or bool(_NUMBERED_START.match(line))
        ended = bool(re.search(r"[.:;!?]$", previous)) and len(previous) < 0.85 * width
        if current and (starts_new or ended or (previous and len(previous) < 0.5 * width and line[:1].isupper())):
            paragraphs.append(current)
            current = ""
        text = line[bullet.end():] if bullet else line
        current = _dehyphenate(current, text, vocabulary) if current else text
        previous = line
    if current:
        paragraphs.append(current)
    return paragraphs


@register("pdf")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units `page-<n>` (1-based physical page, counted across the files in order)."""
    offset = 0
    for path in files:
        path = Path(path)
        texts = _read(path, options)
        pages = [[re.sub(r"\s+", " ", line).strip() for line in normalize(t).split("\n")] for t in texts]
        running = _running_lines([[line for line in page if line] for page in pages])
        vocabulary = {w.lower() for page in pages for line in page for w in re.findall(r"\w+", line)}
        any_text = False
        for number, lines in enumerate(pages, start=1):
            kept = [line for line in lines if line not in running]
            # the page number printed at the top or bottom of the page
            while kept and _PAGE_NO.match(kept[0]):
                kept.pop(0)
            while kept and _PAGE_NO.match(kept[-1]):
                kept.pop()
            physical = offset + number
            texts_on_page = (normalize(p) for p in _paragraphs(kept, vocabulary))
            paragraphs = [Paragraph(text=text, page=physical) for text in texts_on_page if text]
            if not paragraphs:
                continue
            any_text = True
            yield Unit(locator=f"page-{physical}", heading=f"Page {physical}", paragraphs=paragraphs, page=physical)
        if not any_text:
            raise ParseError(path, "no extractable text (scanned images only?)")
        offset += len(pages)
