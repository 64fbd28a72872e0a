"""Contracts in Markdown whose headings carry the clause numbers ("## 2 Kontraktens genstand", "### 2.1 ...").

The clause number is the heading's own number; the text under it, its tables and its lists become the clause's
paragraphs, numbered where the list numbers them. `erst_package` (the combined Markdown of the mini-tender
package) and `markdown` (uploads) read their Markdown with `clauses_from_markdown` too. The MCC-AI texts, which
came out of a PDF and have no Markdown headings, are read by `mcc_pdf_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._clauses import (
    WS,
    Clause,
    clause_units,
    numbered,
    join_lines,
    normalize,
    number_key,
    strip_inline_markdown,
)
from ingest.parsers._markdown import Block, blocks
from ingest.parsers._text import read_normalised
from ingest.units import Unit

_NUMBERED_TITLE = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?(?:\s+(.*))?$")
_TOC_LINK = re.compile(r"^\[[^\]]*\]\(\.?\)\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?[\s:|-]*-[\s:|-]*\|?\s*$")
_CLOSING = re.compile(r"\s*#+\s*$")
_TOC_TITLES = {"indhold", "indholdsfortegnelse", "table of contents", "contents"}


def _is_toc_title(title: str) -> bool:
    bare = re.sub(r"^\d+(?:\.\d+)*\.?\s*", "", title).strip().lower()
    return bare in _TOC_TITLES


def _table_text(rows: list[str]) -> str:
    out = []
    for row in rows:
        if _TABLE_SEP.match(row):
            continue
        cells = [strip_inline_markdown(c).strip() for c in row.strip().strip("|").split("|")]
        kept: list[str] = []
        for cell in cells:
            cell = WS.sub(" ", cell).strip()
            if cell and cell != "None" and (not kept or kept[-1] != cell):
                kept.append(cell)
        if kept:
            out.append(" | ".join(kept))
    return "\n".join(out)


def _item_content(block: Block) -> str:
    """The text after an item's marker on its first line."""
    first = block.lines[0].strip()
    return first[len(block.marker) + 1 :].strip()


def _indent(line: str) -> int:
    """Columns of whitespace before the line's text (a tab counts four)."""
    return len(line[: len(line) - len(line.lstrip())].expandtabs(4))


class _ListState:
    """How the list items being read attach to the clause: as its numbered paragraphs, or as lines of the
    paragraph before them (a list after a line ending in ":")."""

    def __init__(self) -> None:
        self.counter = 0  # the last paragraph number a "1." item was given (numbering lost in conversion)
        self.inside = False  # the items are lines of the paragraph before them
        self.tight = False  # ... and follow each other without blank lines
        self.after_item = False  # the last block read was an item


class _MarkdownClauses:
    """Reads one Markdown document into clauses, block by block (ingest/parsers/_markdown.py): headings open
    clauses, paragraphs and tables are their text, list items their numbered paragraphs."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.blocks = blocks(text, column0=True)
        self.by_start = {block.start: block for block in self.blocks}
        self.clauses: list[Clause] = [Clause(number=None, title="")]
        self.last_key: tuple[int, ...] = ()
        self.list = _ListState()

    @property
    def current(self) -> Clause:
        return self.clauses[-1]

    def read(self) -> list[Clause]:
        for block in self.blocks:
            if block.kind == "heading":
                self.heading(block)
            elif block.kind == "table":
                self.list.after_item = False
                self.current.add(_table_text(block.lines))
            elif block.kind == "item":
                self.item(block)
            else:
                self.text(block.lines)
        return self.clauses

    def heading(self, block: Block) -> None:
        """A numbered heading opens a clause when its number follows the last one; others are text of the clause."""
        self.list.inside = self.list.after_item = False
        title = _CLOSING.sub("", block.title)  # "## 4 C#" is clause 4 "C", as it always was
        title = WS.sub(" ", strip_inline_markdown(title).replace("\t", " ")).strip()
        if not title or self.is_toc(title, block.start):
            return
        numbered = _NUMBERED_TITLE.match(title)
        if numbered:
            number = tuple(numbered.group(1).split("."))
            key = number_key(number)
            if key > self.last_key:
                self.last_key = key
                self.clauses.append(Clause(number=number, title=(numbered.group(2) or "").strip()))
                self.list.counter = 0
                return
        self.current.add(title)

    def is_toc(self, title: str, start: int) -> bool:
        """"## Indhold" is a table of contents; "### 2.3 Indhold" only when TOC links follow."""
        if not _is_toc_title(title):
            return False
        if not _NUMBERED_TITLE.match(title.split(" ")[0]):
            return True
        later = (line.strip() for line in self.lines[start + 1 : start + 6])
        return bool(_TOC_LINK.match(next((line for line in later if line), "")))

    def text(self, lines: list[str]) -> None:
        """A paragraph: its lines re-joined, the table of contents' link lines dropped."""
        kept = [strip_inline_markdown(line.rstrip()) for line in lines if not _TOC_LINK.match(line.strip())]
        if not kept:
            return
        if self.list.after_item:  # text after a list ends it
            self.list.inside = self.list.after_item = False
        self.current.add(join_lines(kept))

    def item(self, block: Block) -> None:
        """A list item: a line of the paragraph above when indented, else a clause paragraph (see `add_item`).
        Lines after the item's first continue as a paragraph of their own."""
        content = _item_content(block)
        clause = self.current
        if _indent(block.lines[0]) >= 2 and clause.paragraphs:
            # a nested item stays inside its parent item
            last = clause.paragraphs[-1]
            label = f"{block.marker}. " if block.ordered else ""
            last.text = normalize(f"{last.text}\n{label}{strip_inline_markdown(content)}")
        else:
            self.add_item(block, strip_inline_markdown(content))
        self.list.after_item = True
        if block.lines[1:]:
            self.text(block.lines[1:])

    def add_item(self, block: Block, content: str) -> None:
        """One list item: a numbered clause paragraph, or a line inside the paragraph before."""
        state, clause, marker = self.list, self.current, block.marker
        last = clause.paragraphs[-1] if clause.paragraphs else None
        first = last is not None and not state.inside and last.text.rstrip().endswith(":")
        if first:
            state.inside, state.tight = True, False
        if state.inside and last is not None:
            blank_before = block.start > 0 and not self.lines[block.start - 1].strip()
            # a capitalised item after a finished sub-list item begins the next clause paragraph
            ends_done = last.text.rstrip().endswith((".", "!", "?"))
            if not first and block.ordered and marker == "1" and content[:1].isupper() and (
                ends_done or (state.tight and blank_before)
            ):
                state.inside = False
            else:
                if not first and not blank_before:
                    state.tight = True
                prefix = f"{marker}. " if block.ordered and self.counted(block) else ""
                last.text = normalize(f"{last.text}\n{prefix}{content}")
                return
        if block.ordered:
            state.counter += 1
            number = str(state.counter) if marker == "1" else marker
            if marker != "1":
                state.counter = int(marker)
            clause.add(content, number=number)
        else:
            clause.add(content)

    def counted(self, block: Block) -> bool:
        """Whether an ordered item's number is its own: not "1.", or "1." followed by "2." (not all "1.")."""
        if block.marker != "1":
            return True
        following = next((i for i in range(block.start + 1, len(self.lines)) if self.lines[i].strip()), None)
        nxt = self.by_start.get(following) if following is not None else None
        return nxt is not None and nxt.kind == "item" and nxt.marker == "2"


def clauses_from_markdown(text: str, path: Path) -> list[Clause]:
    """Clauses of a Markdown document whose headings carry their numbers ("## 2.1 Title").

    A numbered heading opens a clause when its number follows the last one
    (a stray "##### 1 Teknologi" deep inside 2.2 stays a subheading). Unnumbered
    headings stay as text of the clause they are in; "Indhold" tables of contents
    and their link lines are dropped. Ordered lists whose items are all "1." (numbering
    lost in conversion) are numbered in order; a list after a line ending in ":" stays
    inside that paragraph.
    """
    return _MarkdownClauses(text).read()


def clauses_from_file(path: Path) -> list[Clause]:
    """Clauses of one Markdown contract file."""
    return clauses_from_markdown(read_normalised(path), path)


@register("contract_markdown")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units `section-<n>` (and `section-0` for front matter) of Markdown contracts, in order."""
    yield from clause_units(files, numbered(clauses_from_file))
