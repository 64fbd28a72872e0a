"""Contract clauses, whatever format they were read from, and the text helpers their readers share.

A reader (`contract_markdown` for Markdown with numbered headings, `mcc_pdf_text` for the MCC-AI text converted
from PDF, `docx`, `erst_package`, `markdown`) turns one document into `Clause`s (number, title, paragraphs);
`clauses_to_units` makes them units `section-<numbering>`, so every contract is addressed alike. Not a parser:
underscore modules are not discovered by the registry.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.units import Paragraph, ParseError, Unit

# --- text ---------------------------------------------------------------------------------

_HTML_TAG = re.compile(
    r"</?(?:br|p|span|div|sup|sub|b|i|u|em|strong|a|font|table|tr|td|th|tbody|thead|ul|ol|li|hr|img)\b[^>]*>",
    re.IGNORECASE,
)
_ANGLE_NOTE = re.compile(r"<\s*([^<>\n]{0,400}?)\s*>")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])")
_BOLD = re.compile(r"(\*\*|__)(.*?)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC_UNDER = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_CODE = re.compile(r"`([^`]*)`")
WS = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u3000]+")


def normalize(text: str) -> str:
    """NFC and collapsed whitespace, keeping the "\\n" that separates items."""
    text = unicodedata.normalize("NFC", text).replace("\r", "")
    lines = [WS.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def angle_notes(text: str) -> str:
    """Drafting notes "<optional>" become "[optional]": real text, but never mistaken for markup."""
    text = _HTML_TAG.sub(" ", text)
    return _ANGLE_NOTE.sub(lambda m: f"[{m.group(1).strip()}]", text)


def strip_inline_markdown(text: str) -> str:
    """Plain text of one Markdown line: no images, links, emphasis, escapes or tags."""
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _CODE.sub(lambda m: m.group(1), text)
    for _ in range(2):
        text = _BOLD.sub(lambda m: m.group(2), text)
    text = text.replace("**", "")
    text = _ITALIC_STAR.sub(lambda m: m.group(1), text)
    text = _ITALIC_UNDER.sub(lambda m: m.group(1), text)
    text = _MD_ESCAPE.sub(lambda m: m.group(1), text)
    return angle_notes(html.unescape(text))


def join_lines(lines: list[str]) -> str:
    """Re-join lines a conversion broke: hyphen at a line end joins without a space."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("\n"):
            out += line
        elif re.search(r"[A-Za-zæøåÆØÅ]-$", out) and line[:1].islower():
            out += line
        else:
            out += " " + line
    return out


# --- clauses --------------------------------------------------------------------------------


@dataclass
class Clause:
    """A numbered clause (or the unnumbered front matter, number None) of one document."""

    number: tuple[str, ...] | None
    title: str
    paragraphs: list[Paragraph] = field(default_factory=list)
    page: int | None = None
    # the title is the whole heading ("Article 5 – Record-keeping"), not prefixed with the number
    full_heading: bool = False

    def add(self, text: str, number: str | None = None, page: int | None = None) -> None:
        text = normalize(text)
        if text:
            self.paragraphs.append(Paragraph(text=text, number=number, page=page))


def number_key(number: tuple[str, ...]) -> tuple[int, ...]:
    """A clause number as a sort key: "2.10" after "2.9"; a letter ("annex") counts as 0."""
    return tuple(int(n) if n.isdigit() else 0 for n in number)


def clause_locator(number: tuple[str, ...] | None, prefix: tuple[str, ...] = ()) -> str:
    """`section-<prefix>.<number>`; the front matter is clause 0."""
    parts = list(prefix) + (list(number) if number else ["0"])
    return "section-" + ".".join(p.lower() for p in parts)


def clauses_to_units(
    clauses: list[Clause],
    path: Path,
    *,
    prefix: tuple[str, ...] = (),
    heading_prefix: str = "",
    front_heading: str = "Preamble",
) -> list[Unit]:
    """Units from clauses: locators `section-...`, numbered paragraphs kept unless they'd collide.

    A paragraph number that would address a sub-clause unit ("2" in clause 6 when
    clause 6.2 exists) loses its number: the sub-clause unit owns that address.
    """
    locators = [clause_locator(c.number, prefix) for c in clauses]
    taken = set()
    for loc in locators:
        if loc in taken:
            raise ParseError(path, f"two clauses share the locator {loc}")
        taken.add(loc)
    units: list[Unit] = []
    for clause, loc in zip(clauses, locators):
        if not clause.paragraphs and (clause.number is None or not clause.title):
            continue  # nothing to show: an empty front matter or an empty numbered heading
        if clause.number is None:
            title = clause.title or front_heading
        elif clause.full_heading:
            title = clause.title
        else:
            label = ".".join(clause.number)
            title = f"{label} {clause.title}".strip() if clause.title else label
        heading = f"{heading_prefix} – {title}" if heading_prefix and title else (heading_prefix or title)
        paragraphs = list(clause.paragraphs)
        seen: set[str] = set()
        clash = any(
            p.number is not None and (f"{loc}.{p.number}" in taken or p.number in seen or seen.add(p.number))
            for p in paragraphs
        )
        if clash:
            paragraphs = [Paragraph(text=p.text, number=None, page=p.page) for p in paragraphs]
        units.append(Unit(locator=loc, heading=heading, paragraphs=paragraphs, page=clause.page))
    return units


def numbered(read: Callable[[Path], list[Clause]]) -> Callable[[Path], list[Clause]]:
    """`read`, refusing a file in which no clause has a number: a contract parser that finds none is reading
    a text of another layout, and would otherwise pass it off as one unnumbered clause."""

    def read_numbered(path: Path) -> list[Clause]:
        clauses = read(path)
        if not any(c.number for c in clauses):
            raise ParseError(path, "no numbered clauses found")
        return clauses

    return read_numbered


def clause_units(files: list[Path], read: Callable[[Path], list[Clause]]) -> Iterator[Unit]:
    """Units of one text's files, each file's clauses read by `read`; a locator repeated across files is an error."""
    seen: set[str] = set()
    for path in files:
        path = Path(path)
        for unit in clauses_to_units(read(path), path):
            if unit.locator in seen:
                raise ParseError(path, f"locator {unit.locator} repeats one from an earlier file")
            seen.add(unit.locator)
            yield unit
