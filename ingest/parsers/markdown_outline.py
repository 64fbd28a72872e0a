"""An organisation's own Markdown (or plain text): sections by heading, numbered in outline order where the
document does not number them itself.

Registered as `markdown`, the parser an uploaded .md file is read with (ingest/uploads/passages.py), and one a
manifest may name. Text without any Markdown heading is read as text converted from a PDF when that finds
numbered clauses; otherwise the headings are numbered (1, 1.1, 2 ...) so each section gets a `section-<n>`
reference a reader can find again. Option `front_heading`: the heading of the text before the first section
(an upload's title).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._text import read_normalised
from ingest.parsers.contract_markdown import clauses_from_markdown, clauses_from_pdf_text, clauses_to_units
from ingest.units import Unit

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_NUMBERED_HEADING = re.compile(r"^#{1,6}\s*\d{1,3}(?:\.\d{1,3})*\.?\s", re.MULTILINE)
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_HEADING_ANY = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)


def numbered_markdown(text: str) -> str:
    """Headings numbered in outline order (1, 1.1, 2 ...) where the document does not number them itself,
    so each section gets a `section-<n>` reference a reader can find again."""
    if _NUMBERED_HEADING.search(text):
        return text
    lines = text.split("\n")
    levels = sorted({len(m.group(1)) for line in lines if (m := _MD_HEADING.match(line))})
    rank = {level: i + 1 for i, level in enumerate(levels)}
    counters: list[int] = []
    out: list[str] = []
    fenced = False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _MD_HEADING.match(line)
        if match is None or not match.group(2).strip():
            out.append(line)
            continue
        level = min(rank[len(match.group(1))], len(counters) + 1)
        counters = counters[:level] + [0] * (level - len(counters))
        counters[level - 1] += 1
        number = ".".join(str(n) for n in counters[:level])
        out.append(f"{'#' * level} {number} {match.group(2).strip()}")
    return "\n".join(out)


def units_from_text(text: str, path: Path, front_heading: str = "Preamble") -> list[Unit]:
    """The units of Markdown (or plain) text: PDF-text clauses where it has no headings and they are numbered,
    else sections by heading, numbered in outline order."""
    if not _MD_HEADING_ANY.search(text):  # no Markdown headings: text converted from a PDF, or plain paragraphs
        clauses = clauses_from_pdf_text(text, path)
        if any(c.number for c in clauses):
            return clauses_to_units(clauses, path, front_heading=front_heading)
    clauses = clauses_from_markdown(numbered_markdown(text), path)
    return clauses_to_units(clauses, path, front_heading=front_heading)


@register("markdown")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units `section-<n>` of one Markdown file (`section-0` for the text before the first heading)."""
    for path in files:
        path = Path(path)
        yield from units_from_text(read_normalised(path), path, options.get("front_heading", "Preamble"))
