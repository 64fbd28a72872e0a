"""Erhvervsstyrelsen's mini-tender package: one combined Markdown of 19 documents, then .docx files.

Every document gets a number: the combined Markdown's documents keep theirs
("## DOCUMENT 7: ..." is 7), the .docx files that follow get the next numbers in
manifest order (20–24). A clause's locator is `section-<document>.<clause>`
(`section-17.6.1`); a document's text before its first numbered clause is
`section-<document>.0`. Headings carry the document's short name so a passage
says which document it comes from ("Bilag 7 Databehandleraftale – 3 Databehandleren
handler efter instruks"). The combined file's own header and table of contents
and each document's "Indhold" are navigation, not text, and are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._clauses import Clause, clauses_to_units
from ingest.parsers._text import read_normalised
from ingest.parsers.contract_markdown import clauses_from_markdown
from ingest.parsers.docx import clauses_from_docx
from ingest.units import ParseError, Unit

_DOC_HEADER = re.compile(r"^## DOCUMENT (\d{1,3}):\s*(.+?)\s*$")
_TOTAL = re.compile(r"^\*\*Total Documents\*\*:\s*(\d+)", re.MULTILINE)
_SEPARATOR = re.compile(r"^(?:={5,}|\*\*(?:Start|End)\*\*:\s*\[(?:START|END)-DOC-\d+\]\s*)$")


def short_name(name: str) -> str:
    """A document's name without the package's prefixes and suffixes.

    "DA 1 - Bilag 7 Databehandleraftale - PPT.md" -> "Bilag 7 Databehandleraftale".
    """
    name = re.sub(r"\.(md|docx)$", "", name.strip(), flags=re.IGNORECASE)
    name = re.sub(r"^DA\s?\d\s*(?:-\s*)?", "", name)
    name = re.sub(r"\s*-?\s*PPT$", "", name)
    name = re.sub(r"\s+", " ", name).strip(" -")
    return name or "Dokument"


def split_combined(text: str, path: Path) -> list[tuple[int, str, str, int]]:
    """The combined file's documents: (number, name, body, first line), in file order."""
    lines = text.split("\n")
    starts = [(i, _DOC_HEADER.match(line)) for i, line in enumerate(lines)]
    starts = [(i, m) for i, m in starts if m]
    if not starts:
        raise ParseError(path, "no '## DOCUMENT k: <name>' separators: not a combined tender documentation file")
    docs: list[tuple[int, str, str, int]] = []
    for k, (i, m) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        body = [line for line in lines[i + 1 : end] if not _SEPARATOR.match(line.strip())]
        docs.append((int(m.group(1)), m.group(2), "\n".join(body), i + 2))
    numbers = [d[0] for d in docs]
    if numbers != list(range(1, len(docs) + 1)):
        raise ParseError(path, f"documents are not numbered 1..{len(docs)} in order: {numbers}", line=starts[0][0] + 1)
    total = _TOTAL.search(text)
    if total and int(total.group(1)) != len(docs):
        raise ParseError(path, f"header announces {total.group(1)} documents, file holds {len(docs)}")
    return docs


def package_documents(files: list[Path], options: dict[str, Any]) -> Iterator[tuple[int, str, list[Clause], Path]]:
    """(document number, short name, clauses, file) for every document of the package, in order."""
    next_number = 1
    for path in files:
        path = Path(path)
        if path.suffix.lower() == ".docx":
            yield next_number, short_name(path.name), clauses_from_docx(path, options), path
            next_number += 1
            continue
        text = read_normalised(path)
        for number, name, body, first_line in split_combined(text, path):
            if number != next_number:
                raise ParseError(path, f"document {number} follows document {next_number - 1}", line=first_line)
            yield number, short_name(name), clauses_from_markdown(body, path), path
            next_number += 1


@register("erst_package")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units `section-<document>.<clause>` of the whole package, documents in manifest order."""
    seen: set[str] = set()
    for number, name, clauses, path in package_documents(files, options):
        for unit in clauses_to_units(
            clauses, path, prefix=(str(number),), heading_prefix=name, front_heading=""
        ):
            if unit.locator in seen:
                raise ParseError(path, f"locator {unit.locator} occurs twice in the package")
            seen.add(unit.locator)
            yield unit
