"""Danish acts in Markdown (retsinformation style): one unit per §, stk. as numbered paragraphs.

The file has YAML front matter, "## Kapitel N" headings followed by an italic
chapter title line, provisions opening with `**§ N.**` and further stk.
opening with `*Stk. N.*`, and numbered items on indented lines. After the
act come the amending acts' own provisions under an italic heading
("*Ændringsbestemmelser*", §§ numbered from 1 again), the minister's
signature and the "## Bilag" annexes; none of those are §§ of the act.
Bilag 1 of databeskyttelsesloven is the full GDPR text, which the corpus
holds as its own document, so annexes are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ingest.parsers import register
from ingest.parsers.retsinformation_json import (
    SectionOrder,
    clean_text,
    drop_option,
    section_heading,
    split_items,
)
from ingest.parsers._markdown import blocks
from ingest.parsers._text import read_text
from ingest.units import Paragraph, ParseError, Unit

_CHAPTER = re.compile(r"^Kapitel\s+(?P<num>\d+(?:\s?[a-z])?)\b\.?\s*(?P<title>.*)$", re.IGNORECASE)
_ANNEX = re.compile(r"^Bilag\b", re.IGNORECASE)
_SECTION = re.compile(r"^\*\*§\s*(?P<num>\d+)(?:\s?(?P<letter>[a-z]))?\.\*\*\s*(?P<rest>.*)$")
_STK = re.compile(r"^\*Stk\.\s*(?P<num>\d+)(?:\s?(?P<letter>[a-z]))?\.\*\s*(?P<rest>.*)$")
_ITALIC_LINE = re.compile(r"^\*(?!\*)(?P<text>[^*]+)\*$")
_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")


def strip_markdown(text: str) -> str:
    """Remove inline emphasis, links and HTML tags, keeping the words."""
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"\1", text)
    text = text.replace("`", "")
    return text


def _read_lines(path: Path) -> tuple[list[str], int]:
    """The file's lines after the front matter, and the 1-based line number of the first."""
    text = read_text(path)
    lines = text.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            raise ParseError(path, "YAML front matter is not closed with '---'", line=1)
        try:
            yaml.safe_load("\n".join(lines[1:end]))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            raise ParseError(path, f"malformed YAML front matter: {getattr(exc, 'problem', exc)}", line=line) from None
        start = end + 1
    return lines[start:], start + 1


class _Section:
    """A § being read: its number, chapter and stk. texts (lists of lines)."""

    def __init__(self, number: str, chapter: str | None, title: str | None, line: int) -> None:
        self.number = number
        self.chapter = chapter
        self.title = title
        self.line = line
        self.stk: list[tuple[str, list[str]]] = [("1", [])]

    def unit(self) -> Unit | None:
        parts = [(num, split_items(" ".join(lines))) for num, lines in self.stk]
        parts = [(num, text) for num, text in parts if text]
        if not parts:
            return None
        if len(parts) == 1:
            paragraphs = [Paragraph(text=parts[0][1])]
        else:
            paragraphs = [Paragraph(text=text, number=num) for num, text in parts]
        return Unit(
            locator=f"§-{self.number}",
            heading=section_heading(self.number, self.chapter, self.title),
            paragraphs=paragraphs,
        )


def _sections(path: Path) -> Iterator[_Section]:
    """The §§ of one file in order, each with its chapter; text outside §§ is skipped.

    The Markdown headings (chapters, annexes, the act's title) come from markdown-it's token stream; a § and its
    stk. are lines of one Markdown paragraph (no blank line between them), so they are read line by line.
    """
    lines, first_line = _read_lines(path)
    headings = {block.start: block.title for block in blocks("\n".join(lines)) if block.kind == "heading"}
    chapter: str | None = None
    title: str | None = None
    expect_title = False
    current: _Section | None = None
    for offset, raw_line in enumerate(lines):
        lineno = first_line + offset
        line = raw_line.strip()
        if not line:
            continue
        heading = headings.get(offset)
        if heading is not None and _ANNEX.match(heading):
            break  # annexes (bilag) end the act's §§
        chapter_match = _CHAPTER.match(heading) if heading is not None else None
        if chapter_match:
            if current:
                yield current
                current = None
            chapter = re.sub(r"\s+", "", chapter_match["num"]).lower()
            title = clean_text(strip_markdown(chapter_match["title"])) or None
            expect_title = title is None
            continue
        if heading is not None or _RULE.match(line) or line.startswith(">"):
            # title, promulgation formula, rules before the signature: not § text
            if current:
                yield current
                current = None
            expect_title = False
            continue
        section = _SECTION.match(line)
        if section:
            if current:
                yield current
            number = f"{section['num']}{section['letter'] or ''}"
            current = _Section(number, chapter, title, lineno)
            if section["rest"]:
                current.stk[-1][1].append(strip_markdown(section["rest"]))
            expect_title = False
            continue
        italic = _ITALIC_LINE.match(line)
        stk = _STK.match(line)
        if italic and not stk:
            if expect_title:
                title = clean_text(italic["text"])
            elif current:
                # an intermediate heading ("*Ændringsbestemmelser*") ends the § before it
                yield current
                current = None
            expect_title = False
            continue
        expect_title = False
        if current is None:
            continue  # text outside any § (the promulgation line, the signature)
        if stk:
            number = f"{stk['num']}{stk['letter'] or ''}"
            current.stk.append((number, [strip_markdown(stk["rest"])] if stk["rest"] else []))
            continue
        current.stk[-1][1].append(strip_markdown(line))
    if current:
        yield current


@register("paragraph_markdown")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """One unit per § of a Danish act in Markdown, in document order."""
    if not files:
        return
    drop = drop_option(options or {}, Path(files[0]))
    order = SectionOrder()
    yielded = 0
    for file in files:
        path = Path(file)
        for section in _sections(path):
            if section.number in drop:
                continue
            if not order.accept(section.number):
                continue  # a stray § (amending act's provision) out of order
            unit = section.unit()
            if unit is None:
                continue
            yielded += 1
            yield unit
    if not yielded:
        raise ParseError(Path(files[-1]), "no § provisions (lines starting '**§ N.**') found")
