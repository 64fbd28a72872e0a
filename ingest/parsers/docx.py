"""Word documents (.docx) read with python-docx: headings become numbered clauses.

A heading (style "Heading N"/"Overskrift N") opens a clause. Its number is the one
written in its text ("2.1 Ideer ...") or, where Word numbers headings itself and
the text carries none, the outline number counted in order (1, 1.1, 1.1.1, ...),
which is what a reader of the printed document sees. Body paragraphs written
"15.1 <text>" under clause 15 become its numbered paragraph "1". Tables become
rows of "cell | cell". Text before the first heading is the front matter.

The file is checked as a zip first: corrupt, truncated, empty and oversized
(decompression bomb) files are refused before python-docx opens them.
python-docx parses the XML with entities unresolved and no network.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._clauses import Clause, clause_units, normalize, number_key
from ingest.units import ParseError, Unit

DEFAULT_MAX_UNCOMPRESSED = 200 * 1024 * 1024
_HEADING_STYLE = re.compile(r"^(?:heading|overskrift|titre|überschrift)\s*(\d)$", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?(?:\s+(.*))?$", re.DOTALL)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def check_zip(path: Path, max_uncompressed: int) -> None:
    """Refuse what is not a sound, reasonably sized .docx before anything parses it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(path, f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise ParseError(path, "empty file")
    if not zipfile.is_zipfile(path):
        raise ParseError(path, "not a .docx file (no zip archive: corrupt or truncated)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            if total > max_uncompressed:
                raise ParseError(
                    path,
                    f"unpacks to {total} bytes, more than the limit of {max_uncompressed} "
                    "(max_uncompressed_bytes): refused as a possible decompression bomb",
                )
            names = {info.filename for info in infos}
            if "word/document.xml" not in names:
                raise ParseError(path, "zip archive without word/document.xml: not a Word document")
            bad = archive.testzip()
            if bad is not None:
                raise ParseError(path, f"corrupt member {bad} in the zip archive")
    except ParseError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ParseError(path, f"corrupt .docx (zip archive unreadable: {exc})") from None


def _open(path: Path, options: dict[str, Any]) -> Any:
    check_zip(path, int(options.get("max_uncompressed_bytes", DEFAULT_MAX_UNCOMPRESSED)))
    import docx  # python-docx

    try:
        return docx.Document(str(path))
    except Exception as exc:  # python-docx raises many kinds on a broken package
        raise ParseError(path, f"cannot read the Word document: {type(exc).__name__}: {exc}") from None


def _style_name(paragraph: Any) -> str:
    try:
        return paragraph.style.name or ""
    except Exception:  # a style id the styles part does not define
        return ""


def _has_numbering(paragraph: Any) -> bool:
    ppr = paragraph._p.pPr
    return ppr is not None and ppr.numPr is not None


def _table_text(table: Any) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        try:
            row_cells = row.cells
        except Exception:
            continue
        for cell in row_cells:
            text = normalize(cell.text).replace("\n", " ")
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _blocks(document: Any) -> Iterator[tuple[str, Any]]:
    """Body paragraphs and tables in document order; content controls opened, tables of contents skipped."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph as DocxParagraph

    def walk(parent: Any) -> Iterator[tuple[str, Any]]:
        for child in parent.iterchildren():
            tag = child.tag
            if tag == f"{_W}p":
                yield "p", DocxParagraph(child, document)
            elif tag == f"{_W}tbl":
                yield "t", Table(child, document)
            elif tag == f"{_W}sdt":
                gallery = child.find(f".//{_W}docPartGallery")
                if gallery is not None and "contents" in (gallery.get(f"{_W}val") or "").lower():
                    continue  # the table of contents
                content = child.find(f"{_W}sdtContent")
                if content is not None:
                    yield from walk(content)

    yield from walk(document.element.body)


def clauses_from_docx(path: Path, options: dict[str, Any] | None = None) -> list[Clause]:
    """Clauses of a .docx: front matter, then one clause per heading, numbered as the reader sees it."""
    path = Path(path)
    document = _open(path, options or {})
    clauses: list[Clause] = [Clause(number=None, title="")]
    counters: list[int] = []
    last_key: tuple[int, ...] = ()
    for kind, block in _blocks(document):
        clause = clauses[-1]
        if kind == "t":
            clause.add(_table_text(block))
            continue
        text = normalize(block.text)
        style = _style_name(block)
        level_match = _HEADING_STYLE.match(style)
        if level_match:
            if not text and not _has_numbering(block):
                continue
            level = int(level_match.group(1))
            explicit = _NUMBERED.match(text)
            if explicit:
                number = tuple(explicit.group(1).split("."))
                title = normalize(explicit.group(2) or "")
            else:
                level = max(1, min(level, len(counters) + 1))
                counters = counters[:level] + [0] * (level - len(counters))
                counters[level - 1] += 1
                number = tuple(str(n) for n in counters[:level])
                title = text
            key = number_key(number)
            if key <= last_key:
                clause.add(text)  # out of sequence: keep as text of the clause it is in
                continue
            last_key = key
            counters = [int(n) if n.isdigit() else 0 for n in number]
            clauses.append(Clause(number=number, title=title))
            continue
        if not text:
            continue
        numbered = _NUMBERED.match(text)
        if numbered and clause.number and numbered.group(2):
            own = tuple(numbered.group(1).split("."))
            if len(own) > len(clause.number) and own[: len(clause.number)] == clause.number:
                clause.add(numbered.group(2), number=".".join(own[len(clause.number):]))
                continue
        clause.add(text)
    if not any(c.number or c.paragraphs for c in clauses):
        raise ParseError(path, "the document holds no text")
    return clauses


@register("docx")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units `section-<numbering>` of Word documents; `section-0` is text before the first heading."""
    yield from clause_units(files, lambda path: clauses_from_docx(path, options))
