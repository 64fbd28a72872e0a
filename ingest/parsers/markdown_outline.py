"""An organisation's own Markdown (or plain text): sections by heading, numbered in outline order where the
document does not number them itself.

Registered as `markdown`, the parser an uploaded .md file is read with (ingest/uploads/passages.py), and one a
manifest may name. Text without any Markdown heading is read as text converted from a PDF (`mcc_pdf_text`'s
reader) when that finds numbered clauses; otherwise the headings are numbered (1, 1.1, 2 ...) so each section gets
a `section-<n>` reference a reader can find again. Headings are found in markdown-it's token stream
(ingest/parsers/_markdown.py). Option `front_heading`: the heading of the text before the first section (an
upload's title).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._clauses import clauses_to_units
from ingest.parsers._markdown import Block, blocks
from ingest.parsers._text import read_normalised
from ingest.parsers.contract_markdown import clauses_from_markdown
from ingest.parsers.mcc_pdf_text import clauses_from_pdf_text
from ingest.units import Unit

_NUMBER = re.compile(r"^\d{1,3}(?:\.\d{1,3})*\.?(?:\s|$)")
_CLOSING = re.compile(r"\s*#+\s*$")


def _headings(text: str, *, fences: bool) -> list[Block]:
    """The headings an outline is made of: "#" at the start of the line and whitespace after the #s (with
    `fences`, none inside fenced code)."""
    return [
        block
        for block in blocks(text, fences=fences)
        if block.kind == "heading" and block.lines[0].startswith("#") and block.lines[0].lstrip("#")[:1].isspace()
    ]


def _numbered(text: str) -> bool:
    """Whether a heading carries its own number ("## 2 Parter", "#2.1 ..."), read as the contract reader reads it."""
    return any(block.kind == "heading" and _NUMBER.match(block.title) for block in blocks(text, column0=True))


def _has_heading(text: str) -> bool:
    """Whether the text has a Markdown heading with a title ("#" at the start of a line)."""
    return any(block.lines[0].lstrip("#").strip() for block in _headings(text, fences=False))


def numbered_markdown(text: str) -> str:
    """Headings numbered in outline order (1, 1.1, 2 ...) where the document does not number them itself,
    so each section gets a `section-<n>` reference a reader can find again."""
    if _numbered(text):
        return text
    levels = sorted({block.level for block in _headings(text, fences=False)})
    rank = {level: i + 1 for i, level in enumerate(levels)}
    counters: list[int] = []
    lines = text.split("\n")
    for block in _headings(text, fences=True):
        title = _CLOSING.sub("", block.title).strip()
        if not title:
            continue
        level = min(rank[block.level], len(counters) + 1)
        counters = counters[:level] + [0] * (level - len(counters))
        counters[level - 1] += 1
        number = ".".join(str(n) for n in counters[:level])
        lines[block.start] = f"{'#' * level} {number} {title}"
    return "\n".join(lines)


def units_from_text(text: str, path: Path, front_heading: str = "Preamble") -> list[Unit]:
    """The units of Markdown (or plain) text: PDF-text clauses where it has no headings and they are numbered,
    else sections by heading, numbered in outline order."""
    if not _has_heading(text):  # no Markdown headings: text converted from a PDF, or plain paragraphs
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
