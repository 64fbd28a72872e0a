"""Markdown read once, by markdown-it-py: the blocks of a document in source order, each with its source lines.

The parsers of Markdown sources need to know which lines are headings, list items, tables and paragraphs, not how
Markdown renders them; markdown-it-py's token stream says that, with each block's line range. Only those four are
read as structure: the sources' other constructs (indented code, block quotes, rules, HTML blocks, reference
definitions, setext headings; fences unless asked for) were never structure to these parsers, so they stay lines of
paragraph text, as they always were. Inline markup is left to the parsers (they strip it from the source lines).
Lists (and, for the contract reader, headings) are read as the sources write them: see `_as_parsed`.

Tables are the one rule of our own: a run of lines between pipes ("| a | b |") is a table, with or without the
delimiter row ("|---|---|") GFM asks for. `html_markdown` writes its tables' rows without one, Word conversions
often do, and such rows were always read as tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token

BlockKind = Literal["heading", "paragraph", "item", "table"]

_BLOCKS: dict[str, BlockKind] = {"paragraph_open": "paragraph", "heading_open": "heading", "table_open": "table"}
_ROW = re.compile(r"^\s*\|.*\|\s*$")
_BULLET = re.compile(r"^([ \t]*)•(?=[ \t])", re.MULTILINE)
_NUMBER = re.compile(r"^([ \t]*)(\d{1,3})(?=[.)])", re.MULTILINE)
_LONG_NUMBER = re.compile(r"^([ \t]*\d{4,9})(?=[.)])", re.MULTILINE)
_DEEP_ITEM = re.compile(r"^[ \t]+(?=(?:[-*+]|\d{1,3}[.)])[ \t])", re.MULTILINE)
_BARE_MARKER = re.compile(r"^([ \t]*)(?=(?:[-*+]|\d{1,3}[.)])[ \t]*$)", re.MULTILINE)
_INDENTED_HASH = re.compile(r"^([ \t]+)(?=#)", re.MULTILINE)
_TIGHT_HASH = re.compile(r"^(#{6}(?=#)|#{1,6}(?=[^\s#]))", re.MULTILINE)
_SPACE = re.compile(r"[^\S\n\t]")


def _as_parsed(text: str, column0: bool) -> str:
    """The text markdown-it is given: line for line the source, with the sources' conventions made CommonMark.

    * Whitespace is what Python takes for it: a lone "\r" breaks no line (markdown-it's would), a no-break space is
      a space (a line of them is blank, "2.\u00a0Text" an item).
    * "•" (a Word bullet a conversion kept) is a bullet like "-".
    * Numbered items begin anywhere: a marker of up to three digits reads as 1 ("3." -> "1.", "10)" -> "01)"), as
      CommonMark lets only a list starting at 1 interrupt a paragraph ("Leverandøren skal:" / "3. ..."); four
      digits or more are no marker ("2024. Året ..." is text).
    * An item indented four columns or more is an item still (not text of the paragraph above); a marker alone on
      its line ("-", "1.") is text.
    * With `column0`, a heading is a "#" line as the contract reader always took it: at the start of the line, the
      space after the #s optional ("#Kontrakt"; "####### x" is "# x" at level 6); an indented "#" line is text.
    """
    text = _BULLET.sub(r"\1-", _SPACE.sub(" ", text))
    text = _NUMBER.sub(lambda m: m.group(1) + "1".rjust(len(m.group(2)), "0"), _LONG_NUMBER.sub(r"\1\\", text))
    text = _DEEP_ITEM.sub(lambda m: m.group(0) if len(m.group(0).expandtabs(4)) < 4 else "   ", text)
    text = _BARE_MARKER.sub(r"\1\\", text)
    if column0:
        text = _TIGHT_HASH.sub(r"\1 ", _INDENTED_HASH.sub(lambda m: m.group(1)[:-1] + "\\", text))
    return text


def _is_row(state: StateBlock, line: int) -> bool:
    return bool(_ROW.match(state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]]))


def _pipe_table(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """Block rule: consecutive lines between pipes are one table (and a row ends the paragraph or item above)."""
    if not _is_row(state, start):
        return False
    line = start + 1
    while line < end and state.sCount[line] >= state.blkIndent and _is_row(state, line):
        line += 1
    if not silent:
        state.push("table_open", "table", 1).map = [start, line]
        state.push("table_close", "table", -1)
        state.line = line
    return True


def _parser(fences: bool) -> MarkdownIt:
    off = ["code", "blockquote", "hr", "reference", "html_block", "lheading"] + ([] if fences else ["fence"])
    parser = MarkdownIt("commonmark").disable(off)
    parser.block.ruler.before("code", "pipe_table", _pipe_table, {"alt": ["paragraph"]})
    return parser


_PARSERS = {fences: _parser(fences) for fences in (False, True)}


@dataclass
class Block:
    """One block of a Markdown document.

    `lines` are the block's source lines as written (a heading's one line; a paragraph's; a table's rows; for a list
    item, the lines of the paragraph that begins on its marker's line, which is the first). `start` is the 0-based
    source line of the first. A heading has its `level` and `title` (closing #s removed); an item its `marker` ("3"
    for "3." or "3)", "" for a bullet).
    """

    kind: BlockKind
    start: int
    lines: list[str] = field(default_factory=list)
    level: int = 0
    title: str = ""
    marker: str = ""

    @property
    def ordered(self) -> bool:
        return self.kind == "item" and self.marker != ""


def blocks(text: str, *, column0: bool = False, fences: bool = False) -> list[Block]:
    """The document's headings, paragraphs, list items and tables, in source order, nested lists flattened.

    `column0`: headings as the contract reader takes them (see `_as_parsed`). `fences`: fenced code is code, left
    out (without, a fence's lines are text like any other).
    """
    lines = text.split("\n")
    tokens = _PARSERS[fences].parse(_as_parsed(text, column0))
    out: list[Block] = []
    item: Block | None = None  # the list item whose first paragraph has not been seen yet
    for index, token in enumerate(tokens):
        if token.map is None:
            continue
        start, end = token.map
        if token.type == "list_item_open":
            if item is not None and start == item.start:
                continue  # "- 1. x": one item, whose text begins with "1."
            marker = _number(lines[start]) if token.info else ""  # as written, not as parsed
            item = Block("item", start, [lines[start]], marker=marker)
            out.append(item)
        elif token.type in _BLOCKS:
            if item is not None and start == item.start:
                item.lines = lines[start:end]  # the item's own text: what begins on its marker's line
            elif token.type == "heading_open":
                level, title = int(token.tag[1]), _inline(tokens, index)
                out.append(Block("heading", start, lines[start:end], level=level, title=title))
            else:
                out.append(Block(_BLOCKS[token.type], start, lines[start:end]))
            item = None
    return out


def _number(line: str) -> str:
    """The digits an item's line begins with."""
    text = line.lstrip()
    return text[: len(text) - len(text.lstrip("0123456789"))]


def _inline(tokens: list[Token], index: int) -> str:
    """The content of the inline token after tokens[index] (a heading's text)."""
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return following.content if following is not None and following.type == "inline" else ""
