"""Formex XML (the Publications Office's format for the Official Journal) to units.

Formex is the most faithful source of an EU act: articles, paragraphs, points,
recitals and annexes are tagged, so no layout guessing is needed. One text may
come as several files (an OJ package: the act, then one file per annex) or as
one file (a consolidated version with everything in it); both give the same
units: recitals, articles, annexes, in document order.

Only the structure is read here; passage sizes are the splitter's business.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from ingest.parsers import register
from ingest.parsers._text import read_bytes
from ingest.units import Paragraph, ParseError, Unit

# Elements that start a new line of text; everything else is inline.
_BLOCK_TAGS = frozenset(
    {
        "P", "ALINEA", "LIST", "ITEM", "NP", "DLIST", "DLIST.ITEM", "QUOT.S", "PARAG",
        "GR.SEQ", "TITLE", "TI", "STI", "TBL", "CORPUS", "ROW", "CELL", "GR.NOTES",
        "CONTENTS", "FORMULA", "GR.TBL",
    }
)
# Markers rendered for unnumbered list items, by Formex LIST/@TYPE.
_DASHES = {"DASH": "—", "NDASH": "–", "BULLET": "•", "OTHER": ""}
# How a recital is called, by the document language (LG.DOC).
_RECITAL_WORD = {
    "EN": "Recital", "DA": "Betragtning", "DE": "Erwägungsgrund", "FR": "Considérant",
    "SV": "Skäl", "NL": "Overweging",
}
# Titles of definitions articles, lower case (the DLIST structure is detected too).
_DEFINITION_TITLES = frozenset(
    {"definitions", "definitioner", "begriffsbestimmungen", "définitions", "definities", "definitioner och begrepp"}
)
_SECTION_RE = re.compile(
    r"^(?:section|afsnit|sektion|abschnitt|part|del|teil|partie|avsnitt)\s+([A-Z]|\d+)\b", re.IGNORECASE
)
_ARABIC_LABEL = re.compile(r"^\d+(?:\.\d+)*\.?$")
_NUMBER_RE = re.compile(r"^[0-9a-z]+(?:\.[0-9a-z]+)*$")
_ROMAN_RE = re.compile(r"^[ivxlc]+$")
_WS_RE = re.compile(r"\s+")


def _clean(text: str) -> str:
    """NFC, every whitespace run (incl. no-break space) to one space, trimmed."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _number(label: str) -> str:
    """A paragraph/point label as a sub-locator: '1.' -> '1', '(12)' -> '12', '3.1.' -> '3.1', 'a)' -> 'a'."""
    value = _clean(label).lower().replace(" ", "")
    value = value.strip("()").rstrip(".)")
    return value.lstrip("(")


def _group_digits(digits: str) -> str:
    """35000000 -> '35 000 000', as the Official Journal prints amounts."""
    if len(digits) < 5:
        return digits
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return " ".join(parts)


def _is_element(node: Any) -> bool:
    return isinstance(node.tag, str)


class _Renderer:
    """Turns Formex elements into clean text lines.

    Footnotes (NOTE) are dropped, quotation marks come from QUOT.START/QUOT.END
    (their CODE is the character: ‘ ’ in English, » « in Danish), formatting
    (HT, FT, DATE, references) keeps its text. A closing quotation mark that the
    source put inside a dropped footnote is moved to the end of the quotation.
    """

    def __init__(self) -> None:
        self._pending_closers: list[str] = []

    @staticmethod
    def _quote(el: etree._Element, default: str) -> str:
        code = el.get("CODE")
        if code:
            try:
                return chr(int(code, 16))
            except ValueError:
                return default
        return default

    def inline(self, el: etree._Element) -> str:
        """The text of an element as one run of inline text."""
        tag = el.tag
        if tag == "NOTE":
            for end in el.iter("QUOT.END"):
                self._pending_closers.append(self._quote(end, "’"))
            return ""
        if tag == "QUOT.START":
            return self._quote(el, "‘")
        if tag == "QUOT.END":
            return self._quote(el, "’")
        if tag == "FT" and el.get("TYPE") == "NUMBER":
            text = "".join(el.itertext())
            if text.strip().isdigit():
                return _group_digits(text.strip())
        if tag in _BLOCK_TAGS:
            return " " + " ".join(self.lines(el)) + " "
        out = [el.text or ""]
        for child in el:
            if _is_element(child):
                out.append(self.inline(child))
            out.append(child.tail or "")
        return "".join(out)

    def lines(self, el: etree._Element) -> list[str]:
        """The text of a block element, one line per block (points, subparagraphs)."""
        tag = el.tag
        if tag == "LIST":
            out: list[str] = []
            for item in el:
                if _is_element(item):
                    out.extend(self.item(item, el.get("TYPE", "")))
            return out
        if tag == "ITEM":
            parent = el.getparent()
            return self.item(el, parent.get("TYPE", "") if parent is not None else "")
        if tag == "NP":
            return self.np(el)
        if tag == "PARAG":  # only quoted ones (QUOT.S) get here
            label_el = el.find("NO.PARAG")
            label = _clean(self.inline(label_el)) if label_el is not None else ""
            body = self.mixed(el, skip=frozenset({"NO.PARAG"}))
            if label:
                body = [f"{label} {body[0]}"] + body[1:] if body else [label]
            return body
        if tag == "DLIST":
            out = []
            for item in el:
                if _is_element(item) and item.tag == "DLIST.ITEM":
                    out.extend(self.dlist_item(item, el.get("SEPARATOR", "")))
            return out
        if tag == "DLIST.ITEM":
            parent = el.getparent()
            return self.dlist_item(el, parent.get("SEPARATOR", "") if parent is not None else "")
        if tag == "QUOT.S":
            outer = self._pending_closers
            self._pending_closers = []
            out = self.mixed(el)
            if self._pending_closers and out:
                out[-1] += "".join(self._pending_closers)
            self._pending_closers = outer
            return out
        return self.mixed(el)

    def mixed(self, el: etree._Element, skip: frozenset[str] = frozenset()) -> list[str]:
        """Mixed content: inline runs become lines, block children add their own lines."""
        out: list[str] = []
        buf: list[str] = [el.text or ""]

        def flush() -> None:
            text = _clean("".join(buf))
            if text:
                out.append(text)
            buf.clear()

        for child in el:
            if _is_element(child) and child.tag not in skip:
                if child.tag in _BLOCK_TAGS:
                    flush()
                    out.extend(self.lines(child))
                else:
                    buf.append(self.inline(child))
            buf.append(child.tail or "")
        flush()
        return out

    def np(self, el: etree._Element, with_label: bool = True) -> list[str]:
        """A numbered point: '(a) text', sub-blocks on the following lines."""
        label_el = el.find("NO.P")
        label = _clean(self.inline(label_el)) if label_el is not None else ""
        body = self.mixed(el, skip=frozenset({"NO.P"}))
        if with_label and label:
            if body:
                body[0] = f"{label} {body[0]}"
            else:
                body = [label]
        return body

    def item(self, el: etree._Element, list_type: str) -> list[str]:
        """A list item: a numbered point, or an indent marked with a dash."""
        children = [c for c in el if _is_element(c)]
        if len(children) == 1 and children[0].tag == "NP":
            return self.np(children[0])
        body = self.mixed(el)
        marker = _DASHES.get(list_type.upper(), "—") if list_type else "—"
        if body and marker:
            body[0] = f"{marker} {body[0]}"
        return body

    def dlist_item(self, el: etree._Element, separator: str, with_prefix: bool = True) -> list[str]:
        """A definition list entry: '1) »term«: definition' (the Danish GDPR's Art. 4)."""
        prefix_el, term_el, def_el = el.find("PREFIX"), el.find("TERM"), el.find("DEFINITION")
        term = _clean(self.inline(term_el)) if term_el is not None else ""
        head = f"{term}{separator}" if term else ""
        body = self.mixed(def_el) if def_el is not None else []
        first_is_list = (
            def_el is not None
            and not (def_el.text or "").strip()
            and len(def_el)
            and _is_element(def_el[0])
            and def_el[0].tag in {"LIST", "DLIST"}
        )
        if head:
            if body and not first_is_list:
                body[0] = f"{head} {body[0]}"
            else:
                body = [head] + body
        if with_prefix and prefix_el is not None:
            prefix = _clean("".join(prefix_el.itertext()))
            if body and prefix:
                body[0] = f"{prefix} {body[0]}"
        return body

    def flush_closers(self, lines: list[str]) -> list[str]:
        """Closing quotes left over from dropped footnotes go to the end of the paragraph."""
        if self._pending_closers and lines:
            lines[-1] += "".join(self._pending_closers)
        self._pending_closers = []
        return lines


def _text(lines: list[str]) -> str:
    return "\n".join(line for line in lines if line)


def _parse_file(path: Path, keep_pis: bool = False) -> etree._ElementTree:
    """Parse safely: no DTD, no external or internal entity expansion, no network.

    `keep_pis` keeps processing instructions: a consolidation marks amended wording with them."""
    data = read_bytes(path)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=not keep_pis,
    )
    try:
        return etree.ElementTree(etree.fromstring(data, parser))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        raise ParseError(path, f"not well-formed XML: {exc.msg}", line=line) from None
    except ValueError as exc:  # e.g. a declared encoding lxml does not know
        raise ParseError(path, f"cannot decode XML: {exc}") from None


class _Doc:
    """State over the files of one text: language, locators seen."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.language = str(options.get("language", "")).upper() or None
        self.seen: dict[str, Path] = {}

    def claim(self, locator: str, path: Path, el: etree._Element, what: str) -> None:
        if locator in self.seen:
            raise ParseError(path, f"{what} appears twice (locator {locator!r})", line=el.sourceline)
        self.seen[locator] = path


def _language(root: etree._Element, doc: _Doc) -> str:
    if doc.language:
        return doc.language
    lg = root.find(".//LG.DOC")
    if lg is not None and lg.text and lg.text.strip():
        return lg.text.strip().upper()
    return "EN"


def _recital(el: etree._Element, path: Path, lang: str, doc: _Doc) -> Unit:
    np = el.find("NP")
    label_el = np.find("NO.P") if np is not None else None
    label = _clean("".join(label_el.itertext())) if label_el is not None else ""
    number = _number(label)
    if not number.isdigit():
        raise ParseError(path, f"recital without a number (found {label!r})", line=el.sourceline)
    renderer = _Renderer()
    lines = renderer.np(np, with_label=False) if np is not None else renderer.mixed(el)
    # A recital may carry more blocks after its NP.
    for extra in el:
        if _is_element(extra) and extra is not np:
            lines.extend(renderer.lines(extra))
    lines = renderer.flush_closers(lines)
    locator = f"recital-{int(number)}"
    doc.claim(locator, path, el, f"recital {number}")
    word = _RECITAL_WORD.get(lang, "Recital")
    return Unit(locator=locator, heading=f"{word} {int(number)}", paragraphs=[Paragraph(_text(lines))])


def _heading_text(el: etree._Element | None) -> str:
    if el is None:
        return ""
    return _clean(" ".join(_Renderer().mixed(el))).strip("`").strip()


def _is_definitions(article: etree._Element, title: str) -> bool:
    """A definitions article: titled so, or holding a definition list (DLIST)."""
    if title.lower().rstrip(".") in _DEFINITION_TITLES:
        return any(lst.get("TYPE", "").upper() == "ARAB" for lst in article.iter("LIST")) or (
            article.find(".//DLIST") is not None
        )
    return article.find("ALINEA/DLIST") is not None


def _definition_paragraphs(article: etree._Element, path: Path) -> list[Paragraph]:
    """One Paragraph per definition, numbered by its own number ('4'); other text unnumbered.

    Where the article has numbered paragraphs holding definitions (EHDS Art. 2(2)),
    the paragraph's own text is numbered '2' and its definitions '2.1', '2.2', ...
    """
    paragraphs: list[Paragraph] = []
    renderer = _Renderer()
    for child in article:
        if not _is_element(child) or child.tag in {"TI.ART", "STI.ART"}:
            continue
        if child.tag == "PARAG":
            label_el = child.find("NO.PARAG")
            label = _clean("".join(label_el.itertext())) if label_el is not None else ""
            number = _number(label) if label else ""
            parts = [c for c in child if _is_element(c) and c.tag != "NO.PARAG"]
            _definitions_in(parts, renderer, paragraphs, number if _NUMBER_RE.match(number) else "")
        else:
            _definitions_in([child], renderer, paragraphs, "")
    if not any(p.number for p in paragraphs):
        raise ParseError(path, "definitions article without numbered definitions", line=article.sourceline)
    return paragraphs


def _definitions_in(
    parts: list[etree._Element], renderer: _Renderer, paragraphs: list[Paragraph], prefix: str
) -> None:
    """Definitions in `parts` (ALINEAs): text before a list is one paragraph (numbered
    `prefix` when the definitions sit in a numbered paragraph), each list item one more."""
    pending: list[str] = []
    first = [bool(prefix)]

    def flush() -> None:
        if pending:
            number = prefix if first[0] and prefix not in {p.number for p in paragraphs} else None
            paragraphs.append(Paragraph(_text(renderer.flush_closers(list(pending))), number=number or None))
            first[0] = False
            pending.clear()

    def buffered(buf: list[str]) -> None:
        text = _clean("".join(buf))
        if text:
            pending.append(text)
        buf.clear()

    for part in parts:
        if part.tag != "ALINEA":
            pending.extend(renderer.lines(part))
            continue
        buf: list[str] = [part.text or ""]
        for child in part:
            if _is_element(child) and child.tag in {"LIST", "DLIST"}:
                buffered(buf)
                flush()
                for item in child:
                    if _is_element(item):
                        label, lines = _definition_item(item, child, renderer)
                        if prefix and _number(label):
                            label = f"{prefix}.{_number(label)}"
                        paragraphs.append(_numbered(label, renderer.flush_closers(lines), paragraphs))
            elif _is_element(child) and child.tag in _BLOCK_TAGS:
                buffered(buf)
                pending.extend(renderer.lines(child))
            elif _is_element(child):
                buf.append(renderer.inline(child))
            buf.append(child.tail or "")
        buffered(buf)
    flush()


def _definition_item(item: etree._Element, lst: etree._Element, renderer: _Renderer) -> tuple[str, list[str]]:
    """The label ('(4)', '4)') and text lines of one definition, label not in the text."""
    if lst.tag == "DLIST":
        prefix = item.find("PREFIX")
        label = _clean("".join(prefix.itertext())) if prefix is not None else ""
        return label, renderer.dlist_item(item, lst.get("SEPARATOR", ""), with_prefix=False)
    np = item.find("NP")
    label_el = np.find("NO.P") if np is not None else None
    label = _clean("".join(label_el.itertext())) if label_el is not None else ""
    return label, (renderer.np(np, with_label=False) if np is not None else renderer.lines(item))


def _numbered(label: str, lines: list[str], earlier: list[Paragraph]) -> Paragraph:
    """A paragraph numbered by `label`, or unnumbered (label kept in the text) when the
    label is no usable sub-locator or repeats one already used in the unit."""
    number = _number(label) if label else ""
    used = {p.number for p in earlier if p.number}
    if number and _NUMBER_RE.match(number) and number not in used:
        return Paragraph(_text(lines), number=number)
    if label and lines:
        lines = [f"{label} {lines[0]}"] + lines[1:]
    return Paragraph(_text(lines))


def _article(el: etree._Element, path: Path, doc: _Doc) -> Unit:
    ti = el.find("TI.ART")
    if ti is None:
        raise ParseError(path, "article without a title (TI.ART)", line=el.sourceline)
    ti_text = _heading_text(ti)
    match = re.search(r"(\d+)\s*([a-zA-Z])?\s*$", ti_text)
    if match is None:
        raise ParseError(path, f"article title without a number: {ti_text!r}", line=ti.sourceline)
    number = match[1].lstrip("0") + (match[2] or "").lower()
    title = _heading_text(el.find("STI.ART"))
    heading = f"{ti_text} – {title}" if title else ti_text
    locator = f"art-{number}"
    doc.claim(locator, path, el, ti_text)

    if _is_definitions(el, title):
        return Unit(locator, heading, _definition_paragraphs(el, path), definitions=True)

    paragraphs: list[Paragraph] = []
    renderer = _Renderer()
    for child in el:
        if not _is_element(child) or child.tag in {"TI.ART", "STI.ART"}:
            continue
        if child.tag == "PARAG":
            label_el = child.find("NO.PARAG")
            label = _clean("".join(label_el.itertext())) if label_el is not None else ""
            lines: list[str] = []
            for part in child:
                if _is_element(part) and part.tag != "NO.PARAG":
                    lines.extend(renderer.lines(part))
            paragraphs.append(_numbered(label, renderer.flush_closers(lines), paragraphs))
        else:
            lines = renderer.flush_closers(renderer.lines(child))
            if lines:
                paragraphs.append(Paragraph(_text(lines)))
    if not paragraphs:
        raise ParseError(path, f"{ti_text} has no text", line=el.sourceline)
    return Unit(locator, heading, paragraphs)


class _Block:
    """A candidate annex paragraph before numbers are made unique."""

    def __init__(self, number: str | None, lines: list[str], section: str | None = None) -> None:
        self.number = number
        self.lines = lines
        self.section = section
        self.label = ""


def _annex_blocks(container: etree._Element, renderer: _Renderer, section: str | None) -> list[_Block]:
    """Top-level numbered points and sections of an annex; their sub-points stay inside."""
    blocks: list[_Block] = []
    for child in container:
        if not _is_element(child) or child.tag == "TITLE":
            continue
        tag = child.tag
        if tag == "GR.SEQ":
            blocks.extend(_annex_section(child, renderer, section))
        elif tag == "NP" or (tag == "ITEM" and child.find("NP") is not None and len(child) == 1):
            np = child if tag == "NP" else child.find("NP")
            blocks.append(_annex_point(np, renderer, section))
        elif tag == "LIST" and _numbered_list(child):
            for item in child:
                if _is_element(item):
                    blocks.append(_annex_point(item.find("NP"), renderer, section))
        elif tag == "P" and _only_numbered_list(child):
            blocks.extend(_annex_blocks(child, renderer, section))
        else:
            lines = renderer.flush_closers(renderer.lines(child))
            if lines:
                blocks.append(_Block(None, lines, section))
    return blocks


def _only_numbered_list(p: etree._Element) -> bool:
    """A P that only wraps a numbered list (Annex III): its points are top-level points."""
    if (p.text or "").strip() or any((c.tail or "").strip() for c in p):
        return False
    children = [c for c in p if _is_element(c)]
    return len(children) == 1 and _numbered_list(children[0])


def _numbered_list(lst: etree._Element | None) -> bool:
    """A list whose items are arabic-numbered points ('1.', '2.'): top-level annex points."""
    if lst is None or lst.tag != "LIST":
        return False
    items = [i for i in lst if _is_element(i)]
    if not items:
        return False
    for item in items:
        label = item.find("NP/NO.P")
        if label is None or not _ARABIC_LABEL.match(_clean("".join(label.itertext()))):
            return False
    return True


def _annex_point(np: etree._Element, renderer: _Renderer, section: str | None) -> _Block:
    label_el = np.find("NO.P")
    label = _clean("".join(label_el.itertext())) if label_el is not None else ""
    if _ARABIC_LABEL.match(label):
        block = _Block(_number(label), renderer.flush_closers(renderer.np(np, with_label=False)), section)
        block.label = label
        return block
    return _Block(None, renderer.flush_closers(renderer.np(np)), section)


def _annex_section(seq: etree._Element, renderer: _Renderer, outer: str | None) -> list[_Block]:
    """A GR.SEQ: its title (and text before its first point) is one paragraph, numbered by
    the section's own number ('3' for '3. Quality management system', 'a' for 'Section A')."""
    title_el = seq.find("TITLE")
    number: str | None = None
    title_lines: list[str] = []
    label = ""
    if title_el is not None:
        ti = title_el.find("TI")
        np = ti.find("NP") if ti is not None else None
        if np is not None and np.find("NO.P") is not None:
            label = _clean("".join(np.find("NO.P").itertext()))
            if _ARABIC_LABEL.match(label):
                number = _number(label)
                title_lines = renderer.np(np, with_label=False)
            else:
                title_lines = renderer.np(np)
        elif ti is not None:
            title_lines = renderer.mixed(ti)
            match = _SECTION_RE.match(title_lines[0]) if title_lines else None
            if match:
                number = match[1].lower()
        sti = title_el.find("STI")
        if sti is not None:
            sub = renderer.mixed(sti)
            if title_lines and sub:
                title_lines = [f"{title_lines[0]} – {' '.join(sub)}"] + title_lines[1:]
            else:
                title_lines = title_lines + sub
    title_lines = [" ".join(title_lines)] if title_lines else []
    inner = _annex_blocks(seq, renderer, number if number is not None else outer)
    head = _Block(number, title_lines, outer)
    head.label = label
    # Text before the section's first numbered point belongs to the section heading.
    while inner and inner[0].number is None:
        head.lines.extend(inner.pop(0).lines)
    if number is None and not head.lines:
        return inner
    return [head] + inner


def _annex(el: etree._Element, path: Path, doc: _Doc) -> Unit:
    title_el = el.find("TITLE")
    ti = title_el.find("TI") if title_el is not None else None
    if ti is None:
        raise ParseError(path, "annex without a title (TITLE/TI)", line=el.sourceline)
    renderer = _Renderer()
    ti_lines = renderer.mixed(ti)
    first = ti_lines[0] if ti_lines else ""
    match = re.match(r"^(\w+)(?:\s+([IVXLC]+))?\b", first)
    if match is None:
        raise ParseError(path, f"annex title not understood: {first!r}", line=ti.sourceline)
    word, roman = match[1].capitalize(), (match[2] or "I").lower()
    if not _ROMAN_RE.match(roman):
        raise ParseError(path, f"annex number not a roman numeral: {first!r}", line=ti.sourceline)
    rest = ti_lines[1:] + [first[match.end():].strip(" .–-")]
    sti = title_el.find("STI")
    if sti is not None:
        rest += renderer.mixed(sti)
    title = " – ".join(part for part in (_clean(p) for p in rest) if part)
    heading = f"{word} {roman.upper()}" + (f" – {title}" if title else "")
    locator = f"annex-{roman}"
    doc.claim(locator, path, el, heading)

    contents = el.find("CONTENTS")
    if contents is None:
        raise ParseError(path, f"{word} {roman.upper()} has no CONTENTS", line=el.sourceline)
    blocks = _annex_blocks(contents, renderer, None)
    _qualify(blocks)
    paragraphs: list[Paragraph] = []
    for block in blocks:
        if block.number is not None:
            paragraphs.append(_numbered(block.label or block.number, block.lines, paragraphs))
        elif block.lines:
            paragraphs.append(Paragraph(_text(block.lines)))
    if not paragraphs:
        raise ParseError(path, f"{word} {roman.upper()} has no text", line=el.sourceline)
    return Unit(locator, heading, paragraphs)


def _qualify(blocks: list[_Block]) -> None:
    """When points restart in each section (Annex VIII A/B/C: 1, 2, ... each time),
    prefix them with the section ('a.1'); otherwise keep the act's own numbers."""
    numbers = [b.number for b in blocks if b.number is not None]
    if len(numbers) == len(set(numbers)):
        return
    for block in blocks:
        if block.number is not None and block.section and not block.number.startswith(block.section + "."):
            block.number = f"{block.section}.{block.number}"
            block.label = ""


def _units_of_file(path: Path, doc: _Doc) -> Iterator[Unit]:
    tree = _parse_file(path)
    root = tree.getroot()
    if root.tag in {"DOC", "PUBLICATION"}:
        raise ParseError(
            path, f"a Formex package index (<{root.tag}>), not text: list only the act and annex files", line=1
        )
    lang = _language(root, doc)
    found = False
    for el in root.iter("CONSID", "ARTICLE", "ANNEX"):
        ancestors = {a.tag for a in el.iterancestors()}
        if "QUOT.S" in ancestors or (el.tag != "ANNEX" and "ANNEX" in ancestors):
            continue  # quoted in an amending provision, or part of an annex
        found = True
        if el.tag == "CONSID":
            yield _recital(el, path, lang, doc)
        elif el.tag == "ARTICLE":
            yield _article(el, path, doc)
        else:
            yield _annex(el, path, doc)
    if not found:
        raise ParseError(path, f"no recitals, articles or annexes found in <{root.tag}> (not a Formex act or annex?)")


@register("formex")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units of one Formex text: recitals, articles, annexes, in file and document order."""
    if not files:
        raise ParseError(Path("."), "no Formex files given")
    doc = _Doc(options or {})
    for path in files:
        yield from _units_of_file(Path(path), doc)
