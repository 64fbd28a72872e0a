"""Danish acts from retsinformation JSON exports: one unit per §, stk. as numbered paragraphs.

The export lists `provisions[{provision_ref, chapter, section, content}]`, one
entry per §, with the whole § as running text ("§ 71. ... Stk. 2. ..."). The
exporter also leaves artefacts that must not become provisions of the act:
commencement provisions of amending acts appended after the act (no chapter,
numbers that collide with the act's own §§), amended provisions of *other*
acts (the original udbudslov's §§ 197–198), and ranges such as
"§§ 197-198. (Udelades)". The helpers here (stk. splitting, item lines,
headings) are shared with the Markdown parser for Danish acts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._text import read_text
from ingest.units import Paragraph, ParseError, Unit

# Invisible characters the exports carry inside words (soft hyphen, zero-width joiners).
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))

# "§ 71.", "§ 5 a.", "§§ 197-198.", "§ 44-48." at the start of a provision.
_LABEL = re.compile(
    r"^§§?\s*(?P<num>\d+)(?:\s?(?P<letter>[a-z]))?"
    r"(?:\s*[-–]\s*(?P<last>\d+)(?:\s?(?P<last_letter>[a-z]))?)?\.(?=\s|$)\s*"
)
# "Stk. 2.", "Stk. 3 a.", "Stk. 3-8." — capitalised, with the closing period.
_STK = re.compile(r"(?<!\S)Stk\.\s*(?P<num>\d+)(?:\s?(?P<letter>[a-z]))?(?:\s*[-–]\s*(?P<last>\d+))?\.(?=\s|$)")
# Item markers "1)", "2 a)", "a)", and the parentheses that could hide them.
_ITEM_TOKEN = re.compile(
    r"(?P<item>(?<!\S)(?:(?P<num>\d+)(?:\s?(?P<nletter>[a-z]))?|(?P<letter>[a-z]))\)(?=\s|$))"
    r"|(?P<open>\()|(?P<close>\))"
)
# Words after which "a)" / "1)" is a citation, not a list item.
_CITING_WORDS = {"litra", "nr.", "pkt.", "punkt"}


def clean_text(text: str) -> str:
    """NFC, invisible characters removed, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return re.sub(r"\s+", " ", text).strip()


def section_key(number: str) -> tuple[int, str]:
    """Sort key of a § number ("5a" -> (5, "a")), for checking document order."""
    match = re.fullmatch(r"(\d+)\s?([a-z]?)", number.strip().lower())
    if match is None:
        return (-1, "")
    return (int(match[1]), match[2])


def normalize_section(number: str) -> str:
    """The locator form of a § number: "5 a" -> "5a"."""
    return re.sub(r"\s+", "", str(number)).lower()


def section_heading(number: str, chapter: str | None = None, chapter_title: str | None = None) -> str:
    """The unit heading: "Kapitel 7 – § 71", "Kapitel 6. Innovationspartnerskab – § 73", "§ 5 a"."""
    match = re.fullmatch(r"(\d+)([a-z]?)", number)
    shown = f"{match[1]} {match[2]}".strip() if match else number
    heading = f"§ {shown}"
    if chapter:
        ch = re.fullmatch(r"(\d+)\s?([a-z]?)", chapter)
        chapter_shown = f"{ch[1]} {ch[2]}".strip() if ch else chapter
        prefix = f"Kapitel {chapter_shown}"
        if chapter_title:
            prefix += f". {chapter_title}"
        heading = f"{prefix} – {heading}"
    return heading


def split_items(text: str) -> str:
    """Put each numbered item "1) ..." (and lettered "a) ...") of a stk. on its own line.

    An item marker counts only outside parentheses ("side 1)" closes a citation)
    and in sequence (1, 2, 3 or a restart at 1), so citations are left alone.
    """
    text = clean_text(text)
    depth = 0
    last_num = 0
    last_letter = ""
    cuts: list[int] = []
    for match in _ITEM_TOKEN.finditer(text):
        if match["open"]:
            depth += 1
            continue
        if match["close"]:
            depth = max(0, depth - 1)
            continue
        if depth > 0:  # the ")" closes a parenthesis
            depth -= 1
            continue
        before = text[: match.start()].split()
        previous_word = before[-1].lower() if before else ""
        if previous_word in _CITING_WORDS:
            continue
        if match["num"]:
            num = int(match["num"])
            letter = match["nletter"] or ""
            if (not letter and (num == 1 or num == last_num + 1)) or (letter and num == last_num):
                cuts.append(match.start())
                last_num, last_letter = num, ""
        else:
            letter = match["letter"]
            if letter == "a" or (last_letter and ord(letter) == ord(last_letter) + 1):
                cuts.append(match.start())
                last_letter = letter
    if not cuts:
        return text
    pieces = [text[start:end].strip() for start, end in zip([0, *cuts], [*cuts, len(text)])]
    return "\n".join(piece for piece in pieces if piece)


def split_stk(body: str) -> list[tuple[str, str]]:
    """Cut a §'s text (label removed) into (stk. number, text) pairs, numbers "1", "2", "3a".

    A "Stk. N." counts as a new stk. only when N is the next number (or the same
    number with a letter), so "Stk. 2" cited in running text stays text.
    """
    body = clean_text(body)
    starts: list[tuple[int, int, list[str]]] = []  # (label start, text start, numbers)
    last = 1
    for match in _STK.finditer(body):
        num = int(match["num"])
        letter = match["letter"] or ""
        if match["last"] and not letter and num == last + 1 and int(match["last"]) > num:
            numbers = [str(n) for n in range(num, int(match["last"]) + 1)]
            last = int(match["last"])
        elif not letter and num == last + 1:
            numbers = [str(num)]
            last = num
        elif letter and num == last:
            numbers = [f"{num}{letter}"]
        else:
            continue
        starts.append((match.start(), match.end(), numbers))
    out: list[tuple[str, str]] = []
    first_end = starts[0][0] if starts else len(body)
    out.append(("1", body[:first_end]))
    for index, (_, text_start, numbers) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(body)
        for number in numbers:
            out.append((number, body[text_start:end]))
    return [(number, split_items(text)) for number, text in out if clean_text(text)]


def stk_paragraphs(body: str) -> list[Paragraph]:
    """Paragraphs of a §: one per stk., numbered; a single stk. gives one unnumbered paragraph."""
    parts = split_stk(body)
    if len(parts) == 1:
        return [Paragraph(text=parts[0][1])]
    return [Paragraph(text=text, number=number) for number, text in parts]


def drop_option(options: dict[str, Any], path: Path) -> set[str]:
    """The manifest's `drop_sections` as normalised § numbers."""
    value = options.get("drop_sections") or []
    if isinstance(value, (str, int)) or not isinstance(value, Iterable):
        raise ParseError(path, f"option drop_sections must be a list of § numbers, got {value!r}")
    return {normalize_section(str(v)) for v in value}


@dataclass
class _Entry:
    number: str  # "71", "5a"
    chapter: str | None
    body: str  # the § text without its label


class SectionOrder:
    """Keeps §§ in document order: a § not after the previous one is a stray entry.

    Consolidated acts end with provisions of the amending acts ("§ 2. Loven
    træder i kraft ...") that reuse low numbers; the original udbudslov carries
    amended §§ of another act. Both break the ascending order and are dropped.
    """

    def __init__(self) -> None:
        self.last: tuple[int, str] = (-1, "")
        self.seen: set[str] = set()

    def accept(self, number: str) -> bool:
        key = section_key(number)
        if key[0] < 0 or key <= self.last or number in self.seen:
            return False
        self.last = key
        self.seen.add(number)
        return True


class ChapterOrder:
    """Trusts a chapter number only while chapters ascend.

    The udbudslov LBK exports number §§ 195–199 as chapters 18–20 again after
    chapter 20; a chapter that is not new and higher is shown without a chapter.
    """

    def __init__(self) -> None:
        self.current: str | None = None
        self.trusted = False
        self.highest: tuple[int, str] = (-1, "")

    def check(self, chapter: str | None) -> str | None:
        if chapter is None:
            return None
        if chapter != self.current:
            key = section_key(chapter)
            self.current = chapter
            self.trusted = key[0] >= 0 and key > self.highest
            if self.trusted:
                self.highest = key
        return chapter if self.trusted else None


def _read_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(path, f"malformed JSON: {exc.msg}", line=exc.lineno) from None


def _entries(path: Path, data: Any) -> Iterator[_Entry]:
    """The § entries of one export, artefacts that are not a § skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("provisions"), list):
        raise ParseError(path, "expected a JSON object with a 'provisions' list (retsinformation export)")
    provisions = data["provisions"]
    if not provisions:
        raise ParseError(path, "'provisions' is empty")
    has_chapters = any(isinstance(p, dict) and p.get("chapter") for p in provisions)
    for index, item in enumerate(provisions):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise ParseError(path, f"provisions[{index}] has no text 'content'")
        chapter = item.get("chapter")
        chapter = clean_text(str(chapter)) if chapter not in (None, "") else None
        if has_chapters and chapter is None:
            # appended commencement provisions of amending acts, not this act's §§
            continue
        content = clean_text(item["content"])
        label = _LABEL.match(content)
        if label is None:
            continue  # a chapter heading or other non-§ entry
        body = content[label.end() :]
        first = int(label["num"])
        if label["last"] and not label["letter"] and not label["last_letter"] and int(label["last"]) > first:
            # "§§ 197-198. (Udelades)": one unit per § of the range
            for number in range(first, int(label["last"]) + 1):
                yield _Entry(str(number), chapter, body)
        else:
            yield _Entry(f"{first}{label['letter'] or ''}", chapter, body)


@register("retsinformation_json")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """One unit per § of a retsinformation JSON export, in document order."""
    if not files:
        return
    drop = drop_option(options or {}, Path(files[0]))
    order = SectionOrder()
    yielded = 0
    for file in files:
        path = Path(file)
        chapters = ChapterOrder()
        for entry in _entries(path, _read_json(path)):
            if entry.number in drop:
                continue
            chapter = chapters.check(entry.chapter)
            if not order.accept(entry.number):
                continue
            paragraphs = stk_paragraphs(entry.body)
            if not paragraphs:
                continue
            yielded += 1
            yield Unit(
                locator=f"§-{entry.number}",
                heading=section_heading(entry.number, chapter),
                paragraphs=paragraphs,
            )
    if not yielded:
        raise ParseError(Path(files[-1]), "no § provisions found")
