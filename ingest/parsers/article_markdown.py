"""EU acts exported as one Markdown file per article/annex (MDR, IVDR).

Each file has a YAML front matter (`source.chunk_type`, `chunk_id`,
`chunk_title`) and a Markdown body converted from EUR-Lex HTML. `recitals.md`
holds every recital. The body's Markdown (headings, bold, italics, one-row
tables) is only layout: it is removed, and the structure it carries (article
paragraphs "1.", definitions "(1)", annex sections "6.3.") becomes numbered
paragraphs.

The annex helpers here (`clean_text`, `AnnexBlock`, `annex_paragraphs`,
`sentence_case`, `roman_to_int`) are shared with `article_json`, so annexes
of every EU act read from these exports are numbered alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.parsers import register
from ingest.parsers._markdown import Block
from ingest.parsers._markdown import blocks as markdown_blocks
from ingest.parsers._text import read_text
from ingest.units import Paragraph, ParseError, Unit

# An annex section and its subsections stay one paragraph up to this size;
# above it, its numbered subsections become paragraphs of their own.
ANNEX_PARAGRAPH_LIMIT = 4000

# --- text ----------------------------------------------------------------------

# Footnote markers after the act or body they annotate: "93/42/EEC (4)", "of the Council (5)".
_FOOTNOTE = re.compile(
    r"(Council|Justice|Law-Making|Law Making|opinion|\d+/\d+(?:/(?:EEC|EC|EU|Euratom))?)"
    r"(\.?)[ \u00a0]\(\*?\d+\)(?=[\s,.;:)]|$)"
)
_EMPHASIS = re.compile(r"\*{1,3}([^*\n]+?)\*{1,3}")


def clean_text(text: str, *, footnotes: bool = True) -> str:
    """One line of plain text: NFC, no Markdown emphasis or heading marks, no footnote markers, spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    if footnotes:
        text = _FOOTNOTE.sub(r"\1\2", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = text.replace("*", "")
    text = re.sub(r"^\s*#+\s*", "", text)
    return re.sub(r"\s+", " ", text).strip()


_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}


def roman_to_int(roman: str) -> int:
    """Value of a roman numeral ("XVII" -> 17), so annexes sort I, II, ..., XVII."""
    total = 0
    values = [_ROMAN[c] for c in roman.upper()]
    for i, value in enumerate(values):
        total += -value if i + 1 < len(values) and values[i + 1] > value else value
    return total


_ACRONYMS = {"eu", "ce", "udi", "udi-di", "pmcf", "pmpf", "ivd", "ehr", "ict", "dns", "tld", "tfeu"}


def sentence_case(title: str) -> str:
    """An all-capitals title ("CLASSIFICATION RULES") as a sentence ("Classification rules"), acronyms kept."""
    if any(c.islower() for c in title):
        return title

    def word(match: re.Match[str]) -> str:
        w = match.group(0)
        if w in _ACRONYMS:
            return w.upper()
        if w in {"article", "articles", "annex", "annexes", "union", "member", "states", "state"}:
            return w.capitalize()
        return w

    lowered = re.sub(r"[a-z][a-z-]*", word, title.lower())
    return lowered[:1].upper() + lowered[1:]


# --- annex structure -------------------------------------------------------------


@dataclass
class AnnexBlock:
    """One piece of an annex body, in reading order.

    kind "num": a numbered section or point ("6.3", text after the label; `heading`
    when the source marks it as a heading); "div": a PART/CHAPTER heading (`text` is
    its label and title); "text": any other line.
    """

    kind: str
    text: str
    number: str | None = None
    heading: bool = False


@dataclass
class _Node:
    number: str
    lines: list[str]
    heading: bool = False
    children: list[_Node] = field(default_factory=list)
    carry: list[str] = field(default_factory=list)
    label: str = ""  # the number as the text prints it (no division prefix)

    def full(self, *, label: bool) -> list[str]:
        head = list(self.lines)
        if label and head and self.label:
            head[0] = f"{self.label}. {head[0]}"
        out = self.carry + head
        for child in self.children:
            out += child.full(label=True)
        return out


def _top(number: str) -> int:
    return int(number.split(".")[0])


def _division_key(label: str) -> str:
    """"PART A" -> "a", "CHAPTER II" -> "ii": the sub-locator of a division whose sections restart at 1."""
    return label.split("\n")[0].split()[-1].lower()


def annex_paragraphs(blocks: list[AnnexBlock], limit: int = ANNEX_PARAGRAPH_LIMIT) -> list[Paragraph]:
    """Numbered paragraphs of an annex from its blocks.

    A section ("1", "6.3") with its subsections is one paragraph while it fits in
    `limit` characters and has no subsections marked as headings; otherwise its own
    text is paragraph "N" and each subsection is cut the same way (a section that
    is only a title is carried into its first subsection). Numbering restarting at 1
    in a PART or CHAPTER gets the division as prefix ("b.5" for point 5 of Part B,
    "ii.3" for Section 3 of Chapter II). A "1." list restarting inside a section
    stays text of that section.
    """
    restart = _numbering_restarts(blocks)
    roots: list[_Node] = []
    nodes: dict[str, _Node] = {}
    intro: list[str] = []
    pending: list[str] = []  # division headings/intros waiting for the next section
    current: _Node | None = None
    division: _Node | None = None
    seen_division = False
    top_last: int | None = None
    nested_last: int | None = None

    def prefixed(number: str) -> str:
        return f"{division.number}.{number}" if (restart and division is not None) else number

    for block in blocks:
        if block.kind == "div":
            seen_division = True
            if restart:
                division = _Node(_division_key(block.text), [block.text])
                roots.append(division)
                nodes[division.number] = division
                current = division
                top_last, nested_last = None, None
            else:
                pending.append(block.text)
                current = None
            continue
        if block.kind == "num" and block.number is not None:
            number = block.number
            dotted = "." in number
            accept = False
            if not dotted:
                value = int(number)
                if nested_last is not None and value == nested_last + 1:
                    nested_last = value
                elif top_last is None or value > top_last:
                    accept = True
                elif value == 1:
                    nested_last = 1
            elif top_last is None or _top(number) >= top_last:
                accept = True
            key = prefixed(number)
            if accept and key not in nodes:
                node = _Node(key, [block.text] if block.text else [], block.heading, label=number)
                if pending:
                    node.carry, pending = pending, []
                parent_key = key.rsplit(".", 1)[0] if "." in key else None
                parent = nodes.get(parent_key) if parent_key else None
                if parent is not None:
                    parent.children.append(node)
                elif restart and division is not None:
                    division.children.append(node)
                else:
                    roots.append(node)
                nodes[key] = node
                current = node
                top_last = _top(number)
                nested_last = None
                continue
            line = f"{number}. {block.text}".strip()
        else:
            line = block.text
        if not line:
            continue
        if current is not None:
            current.lines.append(line)
        elif seen_division:
            pending.append(line)
        else:
            intro.append(line)

    paragraphs = [Paragraph("\n".join(intro))] if intro else []
    for root in roots:
        _emit(root, paragraphs, limit)
    if pending:
        paragraphs.append(Paragraph("\n".join(pending)))
    return paragraphs


def _numbering_restarts(blocks: list[AnnexBlock]) -> bool:
    """True when a PART/CHAPTER starts its sections again at a number already used."""
    highest = 0
    in_division_first = False
    for block in blocks:
        if block.kind == "div":
            in_division_first = True
        elif block.kind == "num" and block.number is not None:
            top = _top(block.number)
            if in_division_first and highest and top <= highest:
                return True
            in_division_first = False
            highest = max(highest, top)
    return False


def _emit(node: _Node, out: list[Paragraph], limit: int, carry: list[str] | None = None) -> None:
    carry = (carry or []) + node.carry
    whole = carry + node.full(label=False)[len(node.carry):]
    split = node.children and (
        any(child.heading for child in node.children) or len("\n".join(whole)) > limit
    )
    if not split:
        out.append(Paragraph("\n".join(whole), node.number))
        return
    own = carry + node.lines
    if node.number.isalpha():  # a PART/CHAPTER: its label and title are one line
        title_only = len(node.lines) <= 1
    else:
        title_only = not node.lines or (len(node.lines) == 1 and node.heading)
    next_carry: list[str] = []
    if title_only:
        next_carry = own
    else:
        out.append(Paragraph("\n".join(own), node.number))
    for i, child in enumerate(node.children):
        _emit(child, out, limit, next_carry if i == 0 else None)


# --- Markdown files ----------------------------------------------------------------

_FRONT = re.compile(r"\A\s*---\s*\n(.*?)\n---\s*\n", re.S)
_ARTICLE_ID = re.compile(r"^Article\s+(\d+)\s*([a-z]?)$", re.I)
_ANNEX_ID = re.compile(r"^Annex\s+([IVXLC]+)$", re.I)
_PARA = re.compile(r"^ {2,}(\d+[a-z]?)(\.?)\s+(.*)$")
_DEFINITION = re.compile(r"^\s*\((\d+)\)\s+(.*)$")
_RECITAL = re.compile(r"^\s*\((\d+)\)\s+(.*)$")
_DIVISION = re.compile(r"^(PART [A-Z]|CHAPTER [IVXLC]+)$")
# "14.6 Any measurement" (MDR Annex I) lacks the final dot; a plain "1" without one is no label
_NUMBERED = re.compile(r"^(\d+\.(?:\d+\.)*|\d+(?:\.\d+)+)\s+(.*)$")
_NUMBERED_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(.*)$")


def _read(path: Path) -> tuple[dict[str, Any], list[str], int]:
    """Front matter's `source` mapping, body lines, and the file line number of the body's first line."""
    text = read_text(path).replace("\r\n", "\n")
    match = _FRONT.match(text)
    if match is None:
        raise ParseError(path, "no YAML front matter (expected '---' ... '---' at the top)", line=1)
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParseError(path, f"front matter is not valid YAML: {exc}", line=(mark.line + 2) if mark else 1) from None
    source = meta.get("source") if isinstance(meta, dict) else None
    if not isinstance(source, dict) or not source.get("chunk_type"):
        raise ParseError(path, "front matter has no source.chunk_type", line=1)
    first_line = text[: match.end()].count("\n") + 1
    return source, text[match.end():].split("\n"), first_line


def _layout(lines: list[str]) -> tuple[dict[int, Block], set[int]]:
    """The body's Markdown headings (by line) and the lines of its tables, from markdown-it's token stream."""
    found = markdown_blocks("\n".join(lines))
    headings = {block.start: block for block in found if block.kind == "heading"}
    rows = {block.start + k for block in found if block.kind == "table" for k in range(len(block.lines))}
    return headings, rows


def _title(source: dict[str, Any], path: Path) -> str:
    title = clean_text(str(source.get("chunk_title") or ""))
    if not title:
        raise ParseError(path, "front matter has no source.chunk_title", line=1)
    return title


def _article(path: Path, source: dict[str, Any], lines: list[str], first_line: int) -> Unit:
    chunk_id = clean_text(str(source.get("chunk_id", "")))
    match = _ARTICLE_ID.match(chunk_id)
    if match is None:
        raise ParseError(path, f"chunk_id {chunk_id!r} is not 'Article N'", line=1)
    number = match.group(1).lstrip("0") + match.group(2).lower()
    title = _title(source, path)
    definitions = title.lower() == "definitions"
    paragraphs: list[Paragraph] = []
    current: Paragraph | None = None
    expected = 1
    headings, _ = _layout(lines)
    for offset, raw in enumerate(lines):
        stripped = raw.strip()
        if not stripped:
            continue
        if offset in headings:
            heading = clean_text(headings[offset].title)
            if re.fullmatch(r"Article\s+\d+\s*[a-z]?", heading, re.I) or heading == title:
                continue
            if headings[offset].level == 2:
                raise ParseError(path, f"unexpected heading {heading!r} in an article", line=first_line + offset)
        para = _PARA.match(raw)
        if para and not definitions and int(re.sub(r"\D", "", para.group(1))) == expected:
            # "   7 In the event" (IVDR Art. 42(7)) lacks the dot: the number sequence decides
            current = Paragraph(clean_text(para.group(3)), para.group(1))
            paragraphs.append(current)
            expected += 1
            continue
        if definitions:
            defn = _DEFINITION.match(raw)
            if defn and int(defn.group(1)) == expected:
                current = Paragraph(clean_text(defn.group(2)), defn.group(1))
                paragraphs.append(current)
                expected += 1
                continue
        text = clean_text(stripped)
        if not text:
            continue
        if current is None:
            if paragraphs and re.match(r"^(\((?:[a-z]{1,3}|[ivxl]+)\)|[—–-]) ", text):
                paragraphs[-1].text += "\n" + text  # a point stays with the sentence it completes
            else:
                paragraphs.append(Paragraph(text))
        else:
            current.text += "\n" + text
    if not paragraphs:
        raise ParseError(path, f"Article {number} has no text")
    return Unit(f"art-{number}", f"Article {number} – {title}", paragraphs, definitions=definitions)


def _table_blocks(rows: list[str]) -> list[AnnexBlock]:
    """A Markdown table as blocks: a numbered one-row table ("|  | 1. | text |") is section 1.

    Where the first row flattens a list that the next rows repeat item by item,
    the list is rebuilt from the rows, one item a line.
    """
    cells = [[clean_text(c) for c in row.strip().strip("|").split("|")] for row in rows]
    cells = [row for row in cells if not all(re.fullmatch(r"-*", c) for c in row)]
    if not cells:
        return []
    first = cells[0]
    numbered = len(first) >= 3 and first[0] == "" and re.fullmatch(r"\d+(?:\.\d+)*\.", first[1])
    if numbered:
        text = first[2]
        items = [
            f"{row[0]} {row[1]}".strip()
            for row in cells[1:]
            if len(row) >= 2 and row[1]
        ]
        if items:
            first_item = cells[1][1]
            cut = text.find(first_item)
            if cut > 0:
                lead = text[:cut].rstrip()
                marker = cells[1][0]
                if marker and lead.endswith(marker):
                    lead = lead[: -len(marker)].rstrip()
                text = "\n".join([lead, *items])
            # else keep the flattened first row: it holds the whole text
        return [AnnexBlock("num", text, first[1].rstrip("."))]
    return [AnnexBlock("text", " – ".join(c for c in row if c != "" or len(row) == 1)) for row in cells]


def _annex(path: Path, source: dict[str, Any], lines: list[str], first_line: int) -> Unit:
    chunk_id = clean_text(str(source.get("chunk_id", "")))
    match = _ANNEX_ID.match(chunk_id)
    if match is None:
        raise ParseError(path, f"chunk_id {chunk_id!r} is not 'Annex <roman numeral>'", line=1)
    roman = match.group(1).upper()
    title = _title(source, path)
    blocks: list[AnnexBlock] = []
    table: list[str] = []
    title_seen = False
    after_division = False
    headings, rows = _layout(lines)
    for offset, raw in enumerate(lines + [""]):
        stripped = raw.strip()
        if offset in rows:
            table.append(stripped)
            continue
        if table:
            blocks += _table_blocks(table)
            table = []
        if not stripped:
            continue
        if offset in headings:
            heading = clean_text(headings[offset].title)
            if re.fullmatch(rf"ANNEX\s+{roman}", heading, re.I):
                continue
            if not title_seen and not blocks and clean_text(heading).upper() == title.upper():
                title_seen = True
                continue
            if _DIVISION.match(heading):
                blocks.append(AnnexBlock("div", heading))
                after_division = True
                continue
            if after_division and "**" in stripped:  # the division's title
                blocks[-1].text += "\n" + heading
                after_division = False
                continue
            after_division = False
            num = _NUMBERED_HEADING.match(heading)
            if num:
                blocks.append(AnnexBlock("num", num.group(2), num.group(1), heading=True))
            else:
                blocks.append(AnnexBlock("text", heading))
            continue
        after_division = False
        text = clean_text(stripped)
        num = _NUMBERED.match(text)
        if num:
            blocks.append(AnnexBlock("num", num.group(2), num.group(1).rstrip(".")))
        elif text:
            blocks.append(AnnexBlock("text", text))
    paragraphs = annex_paragraphs(blocks)
    if not paragraphs:
        raise ParseError(path, f"Annex {roman} has no text")
    return Unit(f"annex-{roman.lower()}", f"Annex {roman} – {sentence_case(title)}", paragraphs)


def _recitals(path: Path, lines: list[str], first_line: int) -> list[Unit]:
    units: list[Unit] = []
    for offset, raw in enumerate(lines):
        stripped = raw.strip()
        if not stripped:
            continue
        match = _RECITAL.match(stripped)
        if match and int(match.group(1)) == len(units) + 1:
            n = match.group(1)
            units.append(Unit(f"recital-{n}", f"Recital {n}", [Paragraph(clean_text(match.group(2)))]))
        elif units:
            units[-1].paragraphs[0].text += "\n" + clean_text(stripped)
        else:
            raise ParseError(path, "text before recital (1)", line=first_line + offset)
    if not units:
        raise ParseError(path, "no recitals found (expected lines starting '(1)')")
    return units


def _sort_key(unit: Unit) -> tuple[int, int, str]:
    kind, _, rest = unit.locator.partition("-")
    if kind == "recital":
        return (0, int(rest), "")
    if kind == "art":
        digits = re.match(r"\d+", rest)
        return (1, int(digits.group(0)) if digits else 0, rest)
    return (2, roman_to_int(rest), "")


@register("article_markdown")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units of an act split into one Markdown file per article/annex: recitals, articles, annexes.

    Files may come in any order (globs sort annex-IX before annex-V); units are
    yielded in document order.
    """
    units: list[Unit] = []
    for path in files:
        path = Path(path)
        source, lines, first_line = _read(path)
        kind = str(source["chunk_type"]).upper()
        if kind == "RECITALS":
            units += _recitals(path, lines, first_line)
        elif kind == "ARTICLE":
            units.append(_article(path, source, lines, first_line))
        elif kind == "ANNEX":
            units.append(_annex(path, source, lines, first_line))
        elif kind == "PREAMBLE":
            continue
        else:
            raise ParseError(path, f"unknown chunk_type {kind!r} (expected RECITALS, ARTICLE or ANNEX)", line=1)
    seen: set[str] = set()
    for unit in units:
        if unit.locator in seen:
            raise ParseError(files[0] if files else "?", f"{unit.locator} occurs twice")
        seen.add(unit.locator)
    yield from sorted(units, key=_sort_key)
