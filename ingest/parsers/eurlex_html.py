"""EUR-Lex HTML (the OJ "CONVEX" rendering of an act): recitals, articles, annexes.

EUR-Lex marks the structure with anchors — `rct_N` (recitals), `art_N`
(articles, with `NNN.MMM` divs per numbered paragraph), `anx_I` (annexes) —
and with `oj-*` classes (`oj-ti-art`, `oj-sti-art`, `oj-normal`, `oj-ti-grseq-1`,
`oj-table`). Points (a), (b) … are two-column layout tables: label cell, text cell.
We read those anchors rather than the page's layout, so the same act in any
language (and the bare OJ file or the full EUR-Lex page with its navigation)
gives the same locators and paragraph numbers as the Formex of that act.

Footnotes (`oj-note`, and their `ntc…` markers) and the page's header, navigation
and footer are dropped: only text under the act's anchors is read. The HTML is
parsed with lxml.html, which never fetches DTDs or expands external entities.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.html
from lxml import etree

from ingest.parsers import register
from ingest.parsers._text import read_text
from ingest.units import Paragraph, ParseError, Unit

_ART_ID = re.compile(r"^art_(\d+[a-zA-Z]?)$")
_RCT_ID = re.compile(r"^rct_(\d+)$")
_ANX_ID = re.compile(r"^anx_([IVXLC]+)$")
_PARA_DIV_ID = re.compile(r"^\d{3}\.\d{3}$")
_WS = re.compile(r"\s+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")

# "1.   text" at the start of a numbered article paragraph.
_PARA_LABEL = re.compile(r"^(\d+[a-z]?)\.\s+")
# List-table labels that number a definition or an annex point: "1)", "(1)", "1.", "3.1."
_NUM_LABEL = re.compile(r"^\(?(\d+(?:\.\d+)*)[.)]?\)?$")
# A line that opens with such a label: "1. Energy" (first cell of an NIS2 sector row).
_NUM_ITEM_LINE = re.compile(r"^(\d+(?:\.\d+)*)[.)]\s+(\S.*)$")
# Annex section titles: "1.   Introduction", "3. Quality management system".
_NUMBERED_TITLE = re.compile(r"^(\d+(?:\.\d+)*)\.\s+(\S.*)$")
# Annex section titles without their own point number: "Section A — …", "Afsnit 1".
_SECTION_TITLE = re.compile(r"^(?:Section|Afsnit|Part|Del)\s+([A-Z]|\d+)\b", re.IGNORECASE)
# Words for what the source does not spell out, by the language of "Article"/"Artikel".
_RECITAL_WORD = {"da": "Betragtning", "en": "Recital"}
_DEFINITIONS_TITLES = {"definitions", "definitioner"}
# Punctuation that closes up to the word before a dropped footnote marker.
_CLOSING = {",", ".", ";", ":", ")", "’", "«"}
# Elements that start a new line of text; anything else is inline.
_BLOCK_TAGS = {
    "p", "div", "table", "tbody", "tr", "td", "ul", "ol", "li", "hr", "col", "colgroup", "h1", "h2", "h3", "h4",
}


def _clean(text: str) -> str:
    """NFC, one space for any run of whitespace (EUR-Lex pads labels with no-break spaces)."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _classes(el: Any) -> set[str]:
    return set((el.get("class") or "").split())


def _is_note(el: Any) -> bool:
    """A footnote body (`p.oj-note`, `hr.oj-note`) or a footnote marker (`<a id="ntc…">`)."""
    if not isinstance(el.tag, str):
        return False
    if "oj-note" in _classes(el):
        return True
    return el.tag == "a" and (el.get("id") or "").startswith("ntc")


def _inline(el: Any) -> str:
    """The text of an inline element, footnote markers left out."""
    parts: list[str] = []
    if isinstance(el.tag, str):
        parts.append(el.text or "")
    for child in el:
        tail = child.tail or ""
        if not isinstance(child.tag, str):
            pass
        elif _is_note(child):
            if tail[:1] in _CLOSING:  # "2012 (41), der" -> "2012, der"
                parts = ["".join(parts).rstrip()]
        elif child.tag == "br":
            parts.append(" ")
        elif "oj-super" in _classes(child):
            parts.append("^" + _inline(child))  # exponents: 10^25 FLOPs
        else:
            parts.append(_inline(child))
        parts.append(tail)
    return "".join(parts)


def _list_table_cells(table: Any) -> tuple[str, Any] | None:
    """(label, text cell) of a layout table holding one list item, None for other tables."""
    rows = [tr for tr in table.iter("tr") if _owner_table(tr) is table]
    if len(rows) != 1:
        return None
    cells = [td for td in rows[0] if isinstance(td.tag, str) and td.tag in ("td", "th")]
    if len(cells) < 2:
        return None
    label = " ".join(_clean(_inline(td)) for td in cells[:-1] if _clean(_inline(td)))
    return label, cells[-1]


def _owner_table(el: Any) -> Any:
    """The nearest table above `el` (layout tables nest, so rows must be matched to their own)."""
    parent = el.getparent()
    while parent is not None and parent.tag != "table":
        parent = parent.getparent()
    return parent


def _lines(container: Any) -> list[str]:
    """Text of a block container as lines: one per paragraph, one per list item (label kept)."""
    lines: list[str] = []
    buffer: list[str] = [container.text or ""] if container.tag not in ("table", "tbody", "tr") else []

    def flush() -> None:
        text = _clean("".join(buffer))
        if text:
            lines.append(text)
        buffer.clear()

    for child in container:
        if not isinstance(child.tag, str):
            buffer.append(child.tail or "")
            continue
        if _is_note(child):
            buffer.append(child.tail or "")
            continue
        if child.tag not in _BLOCK_TAGS:
            buffer.append(_inline(child))
            buffer.append(child.tail or "")
            continue
        flush()
        lines.extend(_block_lines(child))
        buffer.append(child.tail or "")
    flush()
    return lines


def _block_lines(el: Any) -> list[str]:
    """Lines of one block element (paragraph, list item table, data table, wrapper div)."""
    if el.tag in ("hr", "col", "colgroup"):
        return []
    if el.tag == "p" or el.tag in ("h1", "h2", "h3", "h4"):
        text = _clean(_inline(el))
        return [text] if text else []
    if el.tag == "table":
        if "oj-table" in _classes(el):
            return [line for _, row in _table_rows(el) for line in row]
        item = _list_table_cells(el)
        if item is not None:
            label, cell = item
            body = _lines(cell)
            if not body:
                return [label] if label else []
            return [f"{label} {body[0]}" if label else body[0], *body[1:]]
        return [line for _, row in _table_rows(el) for line in row]
    if el.tag == "div" and "oj-enumeration-spacing" in _classes(el):
        parts = _lines(el)
        return [" ".join(parts)] if parts else []
    return _lines(el)


def _table_rows(table: Any) -> list[tuple[bool, list[str]]]:
    """Rows of a data table: (is header, lines). Nested cell content keeps its own lines."""
    rows: list[tuple[bool, list[str]]] = []
    for tr in table.iter("tr"):
        if _owner_table(tr) is not table:
            continue
        cells = [td for td in tr if isinstance(td.tag, str) and td.tag in ("td", "th")]
        header = any("oj-tbl-hdr" in _classes(p) for td in cells for p in td.iter("p"))
        rows.append((header, _row_text([_lines(td) for td in cells])))
    return rows


def _row_text(cell_lines: list[list[str]]) -> list[str]:
    """One line per row ("a | b") when every cell is one line, else each cell's lines in turn."""
    filled = [lines for lines in cell_lines if lines]
    one_line_cells = len(filled) > 1 and all(len(lines) == 1 for lines in filled)
    if one_line_cells and not _NUM_ITEM_LINE.match(filled[0][0]):
        return [" | ".join(lines[0] for lines in filled)]
    return [line for lines in filled for line in lines]


# --- articles ----------------------------------------------------------------------


def _article(el: Any, path: Path, number: str, definitions_articles: set[str]) -> Unit:
    """One article: heading from oj-ti-art / oj-sti-art, paragraphs from its NNN.MMM divs.

    A definitions article (titled "Definitions"/"Definitioner", or named in the
    `definitions` option) gives one numbered paragraph per definition.
    """
    title_el = next((c for c in el if isinstance(c.tag, str) and "oj-ti-art" in _classes(c)), None)
    if title_el is None:
        raise ParseError(path, f"article anchor art_{number} has no article title (p.oj-ti-art)", el.sourceline)
    label = _clean(_inline(title_el))
    subtitle = ""
    body: list[Any] = []
    for child in el:
        if not isinstance(child.tag, str) or child is title_el or _is_note(child):
            continue
        if "eli-title" in _classes(child) or "oj-sti-art" in _classes(child):
            subtitle = " ".join(_lines(child)) if child.tag != "p" else _clean(_inline(child))
            subtitle = subtitle.strip("` ")  # the English page prints "Subject matter`"
            continue
        body.append(child)
    heading = f"{label} – {subtitle}" if subtitle else label
    definitions = number.lower() in definitions_articles or subtitle.casefold().rstrip(".") in _DEFINITIONS_TITLES
    paragraphs = _definition_paragraphs(body) if definitions else _article_paragraphs(body)
    if definitions and not any(p.number for p in paragraphs):
        # A "Definitions" article without numbered definitions is read as an ordinary one.
        definitions = False
        paragraphs = _article_paragraphs(body)
    return Unit(locator=f"art-{number.lower()}", heading=heading, paragraphs=paragraphs, definitions=definitions)


def _numbered_div(child: Any) -> bool:
    return child.tag == "div" and bool(_PARA_DIV_ID.match(child.get("id") or ""))


def _strip_para_label(lines: list[str], fallback: str) -> tuple[str, list[str]]:
    """The paragraph number from its "1." label (the div id when the label is missing), label removed."""
    if lines:
        match = _PARA_LABEL.match(lines[0])
        if match:
            return match.group(1), [lines[0][match.end():], *lines[1:]]
    return fallback, lines


def _article_paragraphs(body: list[Any]) -> list[Paragraph]:
    """Numbered paragraphs from NNN.MMM divs; other text unnumbered; list tables stay in their paragraph."""
    paragraphs: list[Paragraph] = []
    for child in body:
        lines = _block_lines(child)
        if not lines:
            continue
        if _numbered_div(child):
            number, lines = _strip_para_label(lines, str(int(child.get("id")[4:])))
            paragraphs.append(Paragraph(text="\n".join(lines), number=number))
        elif child.tag == "p" or not paragraphs:
            paragraphs.append(Paragraph(text="\n".join(lines)))
        else:
            paragraphs[-1].text += "\n" + "\n".join(lines)
    return paragraphs


def _definition_paragraphs(body: list[Any], prefix: str = "") -> list[Paragraph]:
    """One paragraph per numbered definition ("1)" / "(1)"), the intro sentence unnumbered."""
    paragraphs: list[Paragraph] = []
    for child in body:
        if _numbered_div(child):
            inner = [c for c in child if isinstance(c.tag, str) and not _is_note(c)]
            number, first = _strip_para_label(_block_lines(inner[0]) if inner else [], str(int(child.get("id")[4:])))
            paragraphs.append(Paragraph(text="\n".join(first), number=number))
            paragraphs.extend(_definition_paragraphs(inner[1:], prefix=f"{number}."))
            continue
        item = _list_table_cells(child) if child.tag == "table" else None
        match = _NUM_LABEL.match(item[0]) if item else None
        if item is not None and match:
            paragraphs.append(Paragraph(text="\n".join(_lines(item[1])), number=prefix + match.group(1)))
            continue
        lines = _block_lines(child)
        if not lines:
            continue
        if child.tag == "p" and not any(p.number for p in paragraphs):
            paragraphs.append(Paragraph(text="\n".join(lines)))
        elif paragraphs:
            paragraphs[-1].text += "\n" + "\n".join(lines)
        else:
            paragraphs.append(Paragraph(text="\n".join(lines)))
    return paragraphs


# --- recitals ----------------------------------------------------------------------


def _recital(el: Any, number: str, word: str) -> Unit:
    """One recital: the text cell of its "(N)" layout table, label stripped."""
    item = next((_list_table_cells(t) for t in el.iter("table")), None)
    if item is not None:
        lines = _lines(item[1])
    else:
        lines = _lines(el)
        if lines:
            lines[0] = re.sub(r"^\(\d+\)\s*", "", lines[0])
    return Unit(locator=f"recital-{number}", heading=f"{word} {number}", paragraphs=[Paragraph(text="\n".join(lines))])


# --- annexes -----------------------------------------------------------------------


@dataclass
class _Block:
    kind: str  # "title", "text", "item"
    lines: list[str]
    label: str = ""


@dataclass
class _Para:
    number: str | None
    lines: list[str] = field(default_factory=list)
    section: str | None = None  # the section a point belongs to, for disambiguation
    is_point: bool = False


def _annex_blocks(children: Iterable[Any]) -> Iterator[_Block]:
    """Annex content as titles, text paragraphs and list items, in order; notes dropped."""
    for child in children:
        if not isinstance(child.tag, str) or _is_note(child) or child.tag in ("hr", "col"):
            continue
        classes = _classes(child)
        if child.tag == "p":
            text = _clean(_inline(child))
            if text:
                kind = "title" if any(c.startswith("oj-ti-") for c in classes) else "text"
                yield _Block(kind, [text])
        elif child.tag == "table" and "oj-table" in classes:
            yield from _data_table_blocks(child)
        elif child.tag == "table":
            item = _list_table_cells(child)
            if item is None:
                lines = _block_lines(child)
                if lines:
                    yield _Block("text", lines)
            else:
                yield _Block("item", _lines(item[1]), label=item[0])
        elif child.tag == "div" and "oj-enumeration-spacing" in classes:
            parts = _lines(child)
            if parts:
                yield _Block("item", parts[1:] or [""], label=parts[0])
        elif child.tag == "div":
            yield from _annex_blocks(list(child))
        else:
            lines = _block_lines(child)
            if lines:
                yield _Block("text", lines)


def _data_table_blocks(table: Any) -> Iterator[_Block]:
    """A data table: rows starting with a numbered cell ("1. Energy") open a point; others are text."""
    rows = _table_rows(table)
    numbered = any(not header and lines and _NUM_ITEM_LINE.match(lines[0]) for header, lines in rows)
    if not numbered:
        text = [line for _, lines in rows for line in lines]
        if text:
            yield _Block("text", text)
        return
    current: _Block | None = None
    for header, lines in rows:
        if not lines:
            continue
        match = _NUM_ITEM_LINE.match(lines[0]) if not header else None
        if match:
            if current is not None:
                yield current
            current = _Block("item", [match.group(2), *lines[1:]], label=match.group(1) + ".")
        elif current is None:
            yield _Block("text", lines)
        else:
            current.lines.extend(lines)
    if current is not None:
        yield current


def _annex_paragraphs(blocks: list[_Block]) -> list[Paragraph]:
    """Top-level numbered points (and numbered section titles) become numbered paragraphs.

    Lettered and indented items stay inside the point above them. When sections
    restart their numbering (Annex VIII, Sections A–C), points take the section
    as prefix ("a.1", "2.3") so locators stay unique.
    """
    paras: list[_Para] = []
    section: str | None = None
    previous = ""
    for block in blocks:
        after_title, previous = previous == "title", block.kind
        if block.kind == "title" and after_title and paras:
            # a title's subtitle: "Section 1 – Information to be provided …", as in Formex
            paras[-1].lines[-1] += " – " + " ".join(block.lines)
        elif block.kind == "title":
            text = block.lines[0]
            numbered = _NUMBERED_TITLE.match(text)
            sectioned = _SECTION_TITLE.match(text)
            if numbered:
                section = numbered.group(1)
                paras.append(_Para(section, [numbered.group(2), *block.lines[1:]], section))
            elif sectioned:
                section = sectioned.group(1).lower()
                paras.append(_Para(section, list(block.lines), section))
            elif paras:
                paras[-1].lines.extend(block.lines)
            else:
                paras.append(_Para(None, list(block.lines)))
        elif block.kind == "item":
            match = _NUM_LABEL.match(block.label)
            if match:
                paras.append(_Para(match.group(1), [line for line in block.lines if line], section, is_point=True))
            else:
                first = f"{block.label} {block.lines[0]}".strip() if block.lines else block.label
                lines = [first, *block.lines[1:]]
                if paras:
                    paras[-1].lines.extend(lines)
                else:
                    paras.append(_Para(None, lines))
        else:
            if paras and paras[-1].number is not None and not paras[-1].is_point:
                paras[-1].lines.extend(block.lines)  # text under a section title belongs to it
            else:
                paras.append(_Para(None, list(block.lines)))
    numbers = [p.number for p in paras if p.number is not None]
    if len(numbers) != len(set(numbers)):
        for para in paras:
            if para.is_point and para.section is not None and not para.number.startswith(para.section + "."):
                para.number = f"{para.section}.{para.number}"
    seen: set[str] = set()
    out: list[Paragraph] = []
    for para in paras:
        number = para.number
        if number is not None and number in seen:
            number = None  # still ambiguous: keep the text, as a continuation
        if number is not None:
            seen.add(number)
        text = "\n".join(line for line in para.lines if line)
        if text or number is not None:
            out.append(Paragraph(text=text, number=number))
    return out


def _annex(el: Any, roman: str) -> Unit:
    """One annex: "BILAG III" + title as heading, points as numbered paragraphs."""
    children = [c for c in el if isinstance(c.tag, str)]
    titles: list[str] = []
    rest: list[Any] = []
    for child in children:
        if not rest and child.tag == "p" and "oj-doc-ti" in _classes(child):
            titles.append(_clean(_inline(child)))
        else:
            rest.append(child)
    label = titles[0] if titles else f"Annex {roman}"
    words = label.split()
    if len(words) >= 2 and words[-1].upper() == roman:
        label = " ".join([w.capitalize() for w in words[:-1]] + [roman])
    title = " ".join(titles[1:])
    if title.isupper():  # NIS2 prints "SEKTORER AF SÆRLIGT KRITISK BETYDNING"
        title = title[:1] + title[1:].lower()
    heading = f"{label} – {title}" if title else label
    blocks = list(_annex_blocks(rest))
    return Unit(locator=f"annex-{roman.lower()}", heading=heading, paragraphs=_annex_paragraphs(blocks))


# --- documents ---------------------------------------------------------------------


def _load(path: Path) -> Any:
    """Read and parse one file; ParseError for missing, empty, non-UTF-8 or non-HTML input."""
    text = read_text(path)
    if not re.search(r"</html\s*>", text[-5000:], re.IGNORECASE):
        raise ParseError(path, "truncated HTML: the closing </html> tag is missing", text.count("\n") + 1)
    parser = lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, huge_tree=False)
    try:
        return lxml.html.document_fromstring(_XML_DECL.sub("", text, count=1), parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(path, f"not parseable as HTML: {exc}") from None


def _language(root: Any, options: dict[str, Any]) -> str:
    """Language for words the source does not print (recital headings): option, else the article label."""
    if options.get("language"):
        return str(options["language"]).lower()
    for el in root.iter("p"):
        if "oj-ti-art" in _classes(el):
            return "da" if _clean(_inline(el)).lower().startswith("artikel") else "en"
    return "en"


def _units(path: Path, options: dict[str, Any]) -> Iterator[Unit]:
    root = _load(path)
    word = _RECITAL_WORD.get(_language(root, options), "Recital")
    definitions_articles = {str(n).lower() for n in options.get("definitions") or []}
    found = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        anchor = el.get("id") or ""
        if match := _ART_ID.match(anchor):
            found += 1
            yield _article(el, path, match.group(1), definitions_articles)
        elif match := _RCT_ID.match(anchor):
            found += 1
            yield _recital(el, match.group(1), word)
        elif match := _ANX_ID.match(anchor):
            found += 1
            yield _annex(el, match.group(1))
    if not found:
        raise ParseError(path, "no EUR-Lex anchors (rct_N, art_N, anx_I) found: not an EUR-Lex act in HTML")


@register("eurlex_html")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units of an act published as EUR-Lex HTML: recitals, articles, annexes, in document order."""
    seen: set[str] = set()
    for path in files:
        path = Path(path)
        for unit in _units(path, options or {}):
            if unit.locator in seen:
                raise ParseError(path, f"{unit.locator} occurs twice")
            seen.add(unit.locator)
            yield unit
