"""The MCC-AI model clauses as text converted from a PDF: articles, annexes and numbered clause labels.

The EU's MCC-AI drafts reach the corpus as plain text taken out of a PDF (the files are named .md but hold no
Markdown headings): "Article N" headings under "Section X" headings, "Annex X" headings, clause labels "5.1." on
their own line (sometimes a whole column of labels before the text they number), points "a." / "(a)", page
numbers, repeated page headers and lines broken by the conversion. The lines are read into tokens, each article's
title is found where the conversion put it, and each article's or annex's body is numbered from its labels.

Registered as `mcc_pdf_text`, named in the manifest for the MCC-AI texts; `markdown` (uploads) reads text without
any Markdown heading with `clauses_from_pdf_text` too. Units are `section-<n>` (articles) and
`section-annex.<x>`, `section-0` for the preamble, as for every contract (ingest/parsers/_clauses.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.parsers import register
from ingest.parsers._clauses import WS, Clause, angle_notes, clause_units, join_lines, normalize, numbered
from ingest.parsers._text import read_normalised
from ingest.units import ParseError, Unit

_BULLET_CHARS = "\uf0b7\u2022\u25aa\u25cf\u25e6\u2023\u2043\uf0a7\uf076"
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,4}(?:\s*/\s*\d{1,4})?\s*$", re.IGNORECASE)
_SECTION = re.compile(r"^Section\s+([A-Z])\s*[–—-]\s*(.+)$")
_ARTICLE = re.compile(r"^Article\s+(\d{1,3})(?:\s+(.*))?$")
_ANNEX = re.compile(r"^Annex\s+([A-Z])(?:(?:\s*[–—-]\s*|\s+)([A-Z].*))?$")
_LABEL = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)\.(?:\s+(.+))?$")
_ITEM = re.compile(r"^(?:([a-z])\.|\(([a-z])\))(?:\s+(.+))?$")


@dataclass
class _Tok:
    kind: str  # text, label, item, bullet, section, article, annex
    value: str = ""
    rest: str = ""
    line: int = 0


def _page_noise(lines: list[str]) -> set[str]:
    """Running headers/footers: lines beside a page break that recur on several pages."""
    near: Counter[str] = Counter()
    counts = Counter(line.strip() for line in lines if line.strip())
    for i, line in enumerate(lines):
        if "\f" not in line:
            continue
        window: list[str] = []
        for step in (-1, 1):
            j, found = i, 0
            while 0 <= j < len(lines) and found < 4:
                candidate = lines[j].replace("\f", "").strip()
                if candidate:
                    window.append(candidate)
                    found += 1
                j += step
        for candidate in set(window):
            near[candidate] += 1
    return {line for line, n in near.items() if n >= 3 and counts[line] >= 3 and not _LABEL.match(line)}


def _tokens(text: str, path: Path) -> list[_Tok]:
    lines = text.split("\n")
    noise = _page_noise(lines)
    toks: list[_Tok] = []
    pending_note: list[str] = []
    note_line = 0
    for index, raw in enumerate(lines):
        line = WS.sub(" ", raw.replace("\f", "")).strip()
        if not line or line in noise or _PAGE_NUMBER.match(line):
            continue
        lineno = index + 1
        if pending_note:
            # a drafting note "< ... >" broken over lines is one piece of text
            pending_note.append(line)
            if ">" in line or len(pending_note) > 8:
                toks.append(_Tok("text", angle_notes(" ".join(pending_note)), line=note_line))
                pending_note = []
            continue
        if line.startswith("<") and ">" not in line:
            pending_note, note_line = [line], lineno
            continue
        if len(line) == 1 and line in _BULLET_CHARS:
            toks.append(_Tok("bullet", line=lineno))
            continue
        if m := _SECTION.match(line):
            toks.append(_Tok("section", m.group(1), angle_notes(m.group(2)), lineno))
            continue
        m = _ARTICLE.match(line)
        if m and not (m.group(2) or "")[:1].islower():
            rest = m.group(2) or ""
            if rest.startswith("<") and ">" not in rest:
                pending_note, note_line = [rest], lineno
                toks.append(_Tok("article", m.group(1), "", lineno))
                continue
            toks.append(_Tok("article", m.group(1), angle_notes(rest), lineno))
            continue
        if m := _ANNEX.match(line):
            toks.append(_Tok("annex", m.group(1), angle_notes(m.group(2) or ""), lineno))
            continue
        if m := _LABEL.match(line):
            toks.append(_Tok("label", m.group(1), angle_notes(m.group(2) or ""), lineno))
            continue
        if m := _ITEM.match(line):
            toks.append(_Tok("item", m.group(1) or m.group(2), angle_notes(m.group(3) or ""), lineno))
            continue
        toks.append(_Tok("text", angle_notes(line), line=lineno))
    if pending_note:
        toks.append(_Tok("text", angle_notes(" ".join(pending_note)), line=note_line))
    if not any(t.kind in ("article", "annex") for t in toks):
        raise ParseError(path, "no 'Article N' or 'Annex X' headings found: not a contract in the expected layout")
    return toks


def _title_like(tok: _Tok, nxt: _Tok | None) -> bool:
    text = tok.value
    if tok.kind != "text" or len(text) > 90 or re.search(r"[.;:,]$", text):
        return False
    if nxt is None or nxt.kind != "text":
        return True
    follower = nxt.value
    return bool(re.match(r"[A-Z\[<“\"]", follower)) or (len(follower) <= 40 and not follower.endswith("."))


def _split_note(text: str) -> tuple[str, str]:
    """"[note] Title" -> ("[note]", "Title")."""
    m = re.match(r"^(\[[^\]]*\])\s*(.*)$", text)
    return (m.group(1), m.group(2)) if m else ("", text)


def _take_titles(toks: list[_Tok]) -> dict[int, tuple[str, list[str]]]:
    """Each article's title, found where the conversion put it (before or after its labels).

    Returns, per article token index, the title and any long drafting note to keep
    as text. A second title line after labels of an untitled article belongs to the
    article before it (the PDF put both titles together).
    """
    titles: dict[int, tuple[str, list[str]]] = {}
    removed: set[int] = set()
    previous: int | None = None
    for i, tok in enumerate(toks):
        if tok.kind != "article":
            continue
        found: list[int] = []
        j = i + 1
        while j < len(toks) and len(found) < 3:
            t = toks[j]
            if t.kind == "label" and not t.rest:
                j += 1
                continue
            nxt = toks[j + 1] if j + 1 < len(toks) else None
            if t.kind == "text" and (not found or not t.value[:1].isupper() or len(found) < 2):
                note, bare = _split_note(t.value)
                if note and not bare:
                    # a note alone on its line ("[optional for ...]"), title on the next
                    found.append(j)
                    j += 1
                    continue
                if _title_like(_Tok("text", bare), nxt):
                    found.append(j)
                    j += 1
                    continue
            break
        parts = [toks[k].value for k in found]
        notes: list[str] = []
        title_parts: list[str] = []
        for part in parts:
            note, bare = _split_note(part)
            if note and len(note) > 70:
                notes.append(note)
            elif note:
                title_parts.append(note)
            if bare:
                title_parts.append(bare)
        uppercase_starts = [k for k, part in enumerate(title_parts) if part[:1].isupper()]
        own = tok.rest
        if (
            not own
            and len(uppercase_starts) >= 2
            and previous is not None
            and not titles.get(previous, ("", []))[0]
            and not toks[previous].rest
        ):
            spill = title_parts[: uppercase_starts[1]]
            title_parts = title_parts[uppercase_starts[1] :]
            titles[previous] = (" ".join(spill), titles.get(previous, ("", []))[1])
        title = " ".join(p for p in [own, *title_parts] if p)
        if own.startswith("[") and own.endswith("]") and len(own) > 70:
            notes.insert(0, own)
            title = " ".join(title_parts)
        titles[i] = (re.sub(r"\s+", " ", title).strip(), notes)
        removed.update(found)
        previous = i
    for k in sorted(removed, reverse=True):
        toks[k].kind = "gone"
    return titles


def _split_chunk(chunk: list[_Tok], parts: int, strict_upper: bool) -> list[list[_Tok]]:
    """Cut one run of text that a column of `parts` labels numbers into that many pieces.

    A cut goes where a line ends a sentence and the next begins a new one; the
    shortest such lines (paragraph ends rarely fill the line) win.
    """
    if parts <= 1:
        return [chunk]
    width = max((len(t.value) for t in chunk if t.kind == "text"), default=80) or 80
    candidates: list[tuple[float, int]] = []
    for b in range(1, len(chunk)):
        prev, cur = chunk[b - 1], chunk[b]
        if cur.kind != "text" or prev.kind not in ("text", "item"):
            continue
        prev_text = prev.value if prev.kind == "text" else prev.rest
        if not prev_text.endswith((".", ";", ">", "]")) and not (prev_text.endswith(":") and not strict_upper):
            continue
        first = cur.value[:1]
        if strict_upper and not (first.isupper() or first in "[<“\""):
            continue
        score = 1.0 - len(prev_text) / (width + 1)
        if strict_upper and prev_text.endswith("."):
            score += 0.5
        if not strict_upper and first.islower():
            score += 0.5  # annex items begin in lower case; a capital starts something else
        candidates.append((score, b))
    cuts = sorted(b for _, b in sorted(candidates, reverse=True)[: parts - 1])
    pieces, start = [], 0
    for b in cuts:
        pieces.append(chunk[start:b])
        start = b
    pieces.append(chunk[start:])
    return pieces


def _render(chunk: list[_Tok]) -> str:
    """Text of a piece: lines re-joined, items "a. ..." and bullets on their own line."""
    lines: list[str] = []
    for tok in chunk:
        if tok.kind == "item":
            lines.append(f"\n{tok.value}. {tok.rest}".rstrip() if tok.rest else f"\n{tok.value}.")
        elif tok.kind == "bullet":
            lines.append("\n")
        elif tok.kind == "label":
            lines.append(f"\n{tok.value}. {tok.rest}".rstrip())
        elif tok.kind == "text":
            if lines and lines[-1].rstrip().endswith(";") and tok.value[:1].isupper():
                lines.append("\n" + tok.value)
            elif lines and re.fullmatch(r"\n[a-z0-9.]+\.", lines[-1]):
                lines[-1] += " " + tok.value
            else:
                lines.append(tok.value)
    out = ""
    for piece in lines:
        if piece.startswith("\n"):
            out = out.rstrip() + "\n" + piece.lstrip("\n")
        else:
            out = join_lines([out, piece]) if out and not out.endswith("\n") else out + piece
    return normalize(angle_notes(out))


def clauses_from_pdf_text(text: str, path: Path) -> list[Clause]:
    """Clauses of an MCC-AI style text: a preamble, articles `N` and annexes `annex.x`."""
    toks = _tokens(text, path)
    titles = _take_titles(toks)
    toks_live = [(i, t) for i, t in enumerate(toks) if t.kind != "gone"]

    clauses: list[Clause] = [Clause(number=None, title="")]
    section = ""
    body: list[_Tok] = []
    article_no: str | None = None
    annex = False

    def close() -> None:
        nonlocal body
        _fill(clauses[-1], body, article_no, annex)
        body = []

    for i, tok in toks_live:
        if tok.kind == "gone":
            continue
        if tok.kind == "section":
            close()
            section = f"Section {tok.value} – {tok.rest}"
            continue
        if tok.kind == "article":
            close()
            title, notes = titles.get(i, (tok.rest, []))
            head = f"Article {tok.value} – {title}" if title else f"Article {tok.value}"
            if section:
                head = f"{section} – {head}"
            clauses.append(Clause(number=(tok.value,), title=head, full_heading=True))
            for note in notes:
                clauses[-1].add(note)
            article_no, annex = tok.value, False
            continue
        if tok.kind == "annex":
            close()
            section = ""
            rest = tok.rest
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if (rest and not re.search(r"[.;:]$", rest) and nxt is not None and nxt.kind == "text"
                    and nxt.value[:1].islower() and len(nxt.value) <= 40):
                rest = f"{rest} {nxt.value}"
                nxt.kind = "gone"
            title = f"Annex {tok.value} – {rest}" if rest else f"Annex {tok.value}"
            clauses.append(Clause(number=("annex", tok.value.lower()), title=title, full_heading=True))
            article_no, annex = None, True
            continue
        body.append(tok)
    close()
    return clauses


def _fill(clause: Clause, body: list[_Tok], article_no: str | None, annex: bool) -> None:
    """Number the body of one article/annex from its labels, re-assembling label columns."""
    if not body:
        return
    # groups: (labels, content tokens)
    groups: list[tuple[list[_Tok], list[_Tok]]] = [([], [])]
    for tok in body:
        top_label = tok.kind == "label" and (
            (article_no is not None and tok.value.split(".")[0] == article_no and "." in tok.value)
            or (annex and "." not in tok.value)
        )
        sub_label = tok.kind == "label" and not top_label
        if top_label:
            labels, content = groups[-1]
            if content or not labels:
                if content or labels or len(groups) > 1 or groups[0][1]:
                    groups.append(([], []))
            groups[-1][0].append(tok)
            if tok.rest:
                groups[-1][1].append(_Tok("text", tok.rest, line=tok.line))
            continue
        if sub_label and annex and not tok.rest:
            # a column of sub-point labels in an annex: handled like items of the point
            groups[-1][1].append(tok)
            continue
        groups[-1][1].append(tok if not sub_label else _Tok("label", tok.value, tok.rest, tok.line))
    for labels, content in groups:
        if not labels:
            if content:
                if clause.paragraphs and content[0].kind == "text" and content[0].value[:1].islower():
                    last = clause.paragraphs[-1]
                    last.text = normalize(join_lines([last.text, _render(content)]))
                else:
                    for piece in _paragraphs(content):
                        clause.add(_render(piece))
            continue
        numbers = [
            lab.value.split(".", 1)[1] if article_no is not None else lab.value for lab in labels
        ]
        content = _regroup_sublabels(content) if annex else content
        # text continuing the paragraph before the label column (page break inside it)
        if len(labels) > 1 and content and content[0].kind == "text" and content[0].value[:1].islower():
            cut = next((b for b in range(1, len(content)) if content[b - 1].kind == "text"
                        and content[b - 1].value.endswith((".", ";", ":"))), len(content))
            if clause.paragraphs:
                last = clause.paragraphs[-1]
                last.text = normalize(join_lines([last.text, _render(content[:cut])]))
                content = content[cut:]
        pieces = _split_chunk(content, len(labels), strict_upper=not annex)
        for number, piece in zip(numbers, pieces):
            clause.add(_render(piece), number=number)
        for piece in pieces[len(numbers):]:
            clause.add(_render(piece))
        for number in numbers[len(pieces):]:
            clause.add(f"{number}.", number=number)


def _paragraphs(content: list[_Tok]) -> list[list[_Tok]]:
    """Unlabelled text cut into paragraphs: after a short line that ends a sentence, or around a short title line."""
    width = max((len(t.value) for t in content if t.kind == "text"), default=80) or 80
    pieces: list[list[_Tok]] = [[]]
    after_title = False
    for k, tok in enumerate(content):
        prev = content[k - 1] if k else None
        nxt = content[k + 1] if k + 1 < len(content) else None
        title = (
            tok.kind == "text" and len(tok.value) <= 40 and tok.value[:1].isupper()
            and not re.search(r"[.;:,]$", tok.value)
            and nxt is not None and nxt.kind == "text" and nxt.value[:1].isupper() and len(nxt.value) > 40
        )
        if prev is not None and tok.kind == "text" and prev.kind == "text" and pieces[-1]:
            ends = prev.value.endswith((".", ":", "?", "!")) and len(prev.value) < 0.85 * width
            if ends or title or after_title:
                pieces.append([])
        after_title = title
        pieces[-1].append(tok)
    return [p for p in pieces if p]


def _regroup_sublabels(content: list[_Tok]) -> list[_Tok]:
    """In annexes, a column of sub-point labels ("2.4." … "2.7.") is spread over the items that follow."""
    out: list[_Tok] = []
    i = 0
    while i < len(content):
        tok = content[i]
        if tok.kind == "label" and not tok.rest:
            run = []
            while i < len(content) and content[i].kind == "label" and not content[i].rest:
                run.append(content[i])
                i += 1
            rest_start = i
            j = i
            while j < len(content) and not (content[j].kind == "label"):
                j += 1
            seg = content[rest_start:j]
            if len(run) > 1 and seg and seg[0].kind == "text" and seg[0].value[:1].islower():
                # the point before the column continues here (page break inside it)
                cut = next((b for b in range(1, len(seg)) if seg[b - 1].kind == "text"
                            and seg[b - 1].value.endswith((".", ";", ":"))), len(seg))
                out.extend(seg[:cut])
                seg = seg[cut:]
            if len(run) == 1:
                out.append(_Tok("label", run[0].value, "", run[0].line))
                out.extend(seg)
            else:
                pieces = _split_chunk(seg, len(run), strict_upper=False)
                for lab, piece in zip(run, pieces):
                    out.append(_Tok("label", lab.value, "", lab.line))
                    out.extend(piece)
                for piece in pieces[len(run):]:
                    out.extend(piece)
            i = j
            continue
        out.append(tok)
        i += 1
    return out


def clauses_from_file(path: Path) -> list[Clause]:
    """Clauses of one MCC-AI text file."""
    return clauses_from_pdf_text(read_normalised(path), path)


@register("mcc_pdf_text")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units `section-<n>`, `section-annex.<x>` (and `section-0` for the preamble) of MCC-AI texts, in order."""
    yield from clause_units(files, numbered(clauses_from_file))
