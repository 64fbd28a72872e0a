"""EU acts exported as JSON (`articles[{number,title,text}]`, `recitals`, `definitions`): EHDS, PLD, NIS2.

The exporter flattened each article to text blocks separated by blank lines:
paragraphs "1.\u00a0\u00a0\u00a0text", points as a "(a)" block followed by the point's
text, indents as a "—" block. It also left layout behind that is not the
article: the titles of the next CHAPTER/SECTION at an article's end, and, in the
last article, the signatures, the act's footnotes and the annexes. This parser
rebuilds numbered paragraphs with their points inside, cuts the stray
headings, and yields the annexes as annex units.

The top-level `definitions` list repeats the definitions article term by term
(EHDS leaves it empty); it is not emitted again.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers.article_markdown import AnnexBlock, annex_paragraphs, clean_text, roman_to_int, sentence_case
from ingest.parsers._text import read_text
from ingest.units import Paragraph, ParseError, Unit

log = logging.getLogger(__name__)

# A footnote marker: a non-breaking space, then "(12)" or "(*1)" — except where
# "(2)" is a real paragraph reference ("Article 16(1) and (2)").
_NBSP_FOOTNOTE = re.compile(r"(\S+)\u00a0\(\*?\d+\)(?=[\s,.;:)’]|$)")
_KEEP_BEFORE = {"and", "or", "to", "point", "points", "paragraph", "paragraphs", "subparagraph", "Article", "Articles"}

_PARA = re.compile(r"^(\d+[a-z]?)\.\s+(.*)$", re.S)
_PARA_ALONE = re.compile(r"^(\d+[a-z]?)\.$")
_POINT = re.compile(r"^\(([a-z]{1,3}|[ivxl]+|\d+)\)$")
_INDENT = {"—", "–", "-"}
_ANNEX = re.compile(r"^ANNEX(?:\s+([IVXLC]+))?$")
_SECTION_LABEL = re.compile(r"^(?:SECTION|CHAPTER)\s+[0-9IVXLC]+$")
_ANNEX_NUM_ALONE = re.compile(r"^(\d+\.|\d+(?:\.\d+)+\.?)$")
_ANNEX_NUM_INLINE = re.compile(r"^(\d+\.(?:\d+\.)*|\d+(?:\.\d+)+)\s+(.*)$")
_END_NOISE = re.compile(r"^(ELI:|ISSN\b|/{4,})")


def _strip_footnotes(text: str) -> str:
    def drop(match: re.Match[str]) -> str:
        word = match.group(1)
        return match.group(0) if word in _KEEP_BEFORE else word

    return _NBSP_FOOTNOTE.sub(drop, text)


def _clean(text: str) -> str:
    return clean_text(_strip_footnotes(unicodedata.normalize("NFC", text)))


def _raw_blocks(text: str) -> list[str]:
    return [b for b in re.split(r"\n[ \t\u00a0]*\n", text.replace("\r\n", "\n")) if b.strip()]


def _is_caps_heading(block: str) -> bool:
    return (
        not any(c.islower() for c in block)
        and re.search(r"[A-Z]{3,}", block) is not None
        and len(block) < 200
        and not block.rstrip().endswith((".", ";", ":", ","))
    )


def _strip_trailing_headings(blocks: list[str]) -> list[str]:
    """Drop the next chapter's or section's title that the exporter appended to an article."""
    blocks = list(blocks)
    while blocks:
        if len(blocks) >= 2 and _SECTION_LABEL.match(blocks[-2]):
            del blocks[-2:]
        elif _SECTION_LABEL.match(blocks[-1]) or _is_caps_heading(blocks[-1]):
            blocks.pop()
        else:
            break
    return blocks


def _join_markers(blocks: list[str]) -> list[str]:
    """ "(a)" or "—" alone on a block belongs to the block after it."""
    out: list[str] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if (_POINT.match(block) or block in _INDENT) and i + 1 < len(blocks):
            out.append(f"{block} {blocks[i + 1]}")
            i += 2
            continue
        out.append(block)
        i += 1
    return out


def _article_paragraphs(blocks: list[str], definitions: bool) -> list[Paragraph]:
    """Numbered paragraphs with their points inside; definitions one paragraph each.

    In a definitions article with numbered paragraphs (EHDS Art. 2(2)), a point
    that defines a term ("(a) ‘personal electronic health data’ means ...")
    becomes paragraph "2.a".
    """
    paragraphs: list[Paragraph] = []
    current: Paragraph | None = None
    para_number: str | None = None
    expected_para = 1
    expected_def = 1
    used: set[str] = set()
    i = 0
    while i < len(blocks):
        block = blocks[i]
        alone = _PARA_ALONE.match(block)
        if alone and i + 1 < len(blocks):  # "1." then the text
            block = f"{alone.group(1)}. {blocks[i + 1]}"
            i += 1
        i += 1
        para = _PARA.match(block)
        if para and int(re.sub(r"\D", "", para.group(1))) == expected_para:
            para_number = para.group(1)
            current = Paragraph(para.group(2), para_number)
            paragraphs.append(current)
            used.add(para_number)
            expected_para += 1
            continue
        point = re.match(r"^\(([a-z]{1,3}|\d+)\) (.*)$", block, re.S)
        if definitions and point:
            label, body = point.group(1), point.group(2)
            is_term = body.startswith(("‘", "'", "“", '"'))
            number: str | None = None
            if label.isdigit() and para_number is None and int(label) == expected_def:
                number = label
                expected_def += 1
            elif label.isalpha() and para_number is not None and is_term:
                number = f"{para_number}.{label}"
            if number is not None and number not in used:
                current = Paragraph(body, number)
                paragraphs.append(current)
                used.add(number)
                continue
        if current is None:
            if paragraphs and re.match(r"^(\((?:[a-z]{1,3}|[ivxl]+)\)|[—–-]) ", block):
                paragraphs[-1].text += "\n" + block  # a point stays with the sentence it completes
            else:
                paragraphs.append(Paragraph(block))
        else:
            current.text += "\n" + block
    return paragraphs


def _is_footnote(raw: str, nxt: str | None) -> bool:
    if re.match(r"^\(\*?\d+\)[ \u00a0]{2,}\S", raw):
        return True
    return bool(re.fullmatch(r"\(\*?\d+\)", raw.strip()) and nxt is not None and nxt.strip().startswith("OJ"))


def _drop_footnotes(raw: list[str]) -> list[str]:
    out: list[str] = []
    skip_next = False
    for i, block in enumerate(raw):
        if skip_next:
            skip_next = False
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        if _is_footnote(block, nxt):
            skip_next = re.fullmatch(r"\(\*?\d+\)", block.strip()) is not None
            continue
        out.append(block)
    return out


def _pair_rows(cells: list[str], columns: int = 2) -> list[str]:
    return [" – ".join(cells[i : i + columns]) for i in range(0, len(cells), columns)]


def _annex_unit(roman: str | None, body_raw: list[str], extra_rows: list[str]) -> Unit:
    blocks = [_clean(b) for b in _drop_footnotes(body_raw)]
    blocks = [b for b in blocks if b and not _END_NOISE.match(b)]
    title = blocks.pop(0) if blocks else ""
    number = roman or "I"
    locator = f"annex-{number.lower()}"
    label = f"Annex {roman}" if roman else "Annex"
    heading = f"{label} – {sentence_case(title)}" if title else label
    if "correlation table" in title.lower():
        rows = _pair_rows(blocks)
        if extra_rows:
            rows += _pair_rows(extra_rows)
        return Unit(locator, heading, [Paragraph("\n".join(rows))] if rows else [])
    annex_blocks: list[AnnexBlock] = []
    joined = _join_markers(blocks)
    i = 0
    while i < len(joined):
        block = joined[i]
        alone = _ANNEX_NUM_ALONE.match(block)
        inline = _ANNEX_NUM_INLINE.match(block)
        if alone and i + 1 < len(joined):
            annex_blocks.append(AnnexBlock("num", joined[i + 1], alone.group(1).rstrip(".")))
            i += 2
            continue
        if inline:
            annex_blocks.append(AnnexBlock("num", inline.group(2), inline.group(1).rstrip(".")))
        else:
            annex_blocks.append(AnnexBlock("text", block))
        i += 1
    return Unit(locator, heading, annex_paragraphs(annex_blocks))


def _load(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("articles"), list) or not data["articles"]:
        raise ParseError(path, "no 'articles' list (expected {\"articles\": [{\"number\", \"title\", \"text\"}, ...]})")
    return data


def _recitals(path: Path, data: dict[str, Any]) -> list[Unit]:
    recitals = data.get("recitals") or []
    if not isinstance(recitals, list):
        raise ParseError(path, "'recitals' is not a list")
    units: dict[int, Unit] = {}
    texts: dict[int, str] = {}
    for i, entry in enumerate(recitals):
        if not isinstance(entry, dict) or "text" not in entry or "recital_number" not in entry:
            raise ParseError(path, f"recital #{i + 1} has no recital_number/text")
        try:
            number = int(entry["recital_number"])
        except (TypeError, ValueError):
            reason = f"recital #{i + 1}: recital_number {entry['recital_number']!r} is not a number"
            raise ParseError(path, reason) from None
        raw = str(entry["text"])
        if number in texts:
            if texts[number] == raw:  # the exporter repeats the last recital
                continue
            raise ParseError(path, f"recital {number} occurs twice with different text")
        texts[number] = raw
        lines = [_clean(b) for b in _join_markers(_raw_blocks(raw))]
        text = "\n".join(line for line in lines if line)
        text = re.sub(rf"^\({number}\)\s*", "", text)
        if not text:
            raise ParseError(path, f"recital {number} has no text")
        units[number] = Unit(f"recital-{number}", f"Recital {number}", [Paragraph(text)])
    return [units[n] for n in sorted(units)]


@register("article_json")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Recitals, articles and annexes of an act exported as `articles.json`, in document order."""
    for path in files:
        path = Path(path)
        data = _load(path)
        yield from _recitals(path, data)
        articles: list[Unit] = []
        stray_rows: list[str] = []
        tail: list[str] = []
        entries = data["articles"]
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not all(k in entry for k in ("number", "text")):
                raise ParseError(path, f"article #{i + 1} lacks number or text")
            number = str(entry["number"]).strip().lower()
            if not re.fullmatch(r"\d+[a-z]?", number):
                raise ParseError(path, f"article #{i + 1}: number {entry['number']!r} is not an article number")
            raw = _raw_blocks(str(entry["text"]))
            title = _clean(str(entry.get("title") or ""))
            if not title and raw and not _PARA.match(_clean(raw[0])) and len(raw[0]) < 300:
                # EHDS Art. 87: the exporter left the title as the text's first block
                title = _clean(raw.pop(0))
            if re.match(r"^Articles?\s+\d", title):
                # not an article: a piece of the correlation table the exporter filed under this number
                log.warning(
                    "%s: article %s is a correlation-table fragment (%r); its text is missing", path, number, title
                )
                stray_rows = [title] + [_clean(b) for b in raw]
                continue
            if i == len(entries) - 1:
                done = next((k for k, b in enumerate(raw) if b.strip().startswith("Done at ")), None)
                if done is not None:
                    raw, tail = raw[:done], raw[done:]
            blocks = _strip_trailing_headings([b for b in (_clean(b) for b in raw) if b])
            definitions = title.lower() == "definitions"
            paragraphs = _article_paragraphs(_join_markers(blocks), definitions)
            if not paragraphs:
                raise ParseError(path, f"article {number} has no text")
            heading = f"Article {number} – {title}" if title else f"Article {number}"
            articles.append(Unit(f"art-{number}", heading, paragraphs, definitions=definitions))
        seen: set[str] = set()
        for unit in articles:
            if unit.locator in seen:
                raise ParseError(path, f"article {unit.locator} occurs twice")
            seen.add(unit.locator)
        yield from articles
        yield from _annexes(path, tail, stray_rows)


def _annexes(path: Path, tail: list[str], stray_rows: list[str]) -> Iterator[Unit]:
    """The annexes after the signatures and footnotes at the end of the last article."""
    starts = [(k, _ANNEX.match(_clean(b))) for k, b in enumerate(tail)]
    marks = [(k, m) for k, m in starts if m]
    units: list[Unit] = []
    for n, (k, match) in enumerate(marks):
        end = marks[n + 1][0] if n + 1 < len(marks) else len(tail)
        roman = match.group(1)
        is_table = n + 1 == len(marks)
        units.append(_annex_unit(roman, tail[k + 1 : end], stray_rows if is_table else []))
    if stray_rows and not any("correlation table" in u.heading.lower() for u in units):
        log.warning("correlation-table fragment dropped: no correlation table annex to put it in")
    locators = [u.locator for u in units]
    if len(set(locators)) != len(locators):
        raise ParseError(path, f"an annex occurs twice: {', '.join(locators)}")
    units.sort(key=lambda u: roman_to_int(u.locator.split("-", 1)[1]))
    yield from units
