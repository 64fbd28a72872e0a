"""From units to passages: split where the law is structured, never across two units.

A unit with numbered paragraphs (Article 26(1), stk. 2, definition 12, point 5
of an annex) gives one passage per number; text before the first number is the
unit's own passage. A passage over the size limit is cut at paragraph
boundaries (sentences, when one paragraph alone is too long); every piece keeps
the reference and carries the unit's heading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.manifest import DocumentSpec, TextSpec
from ingest.units import Paragraph, Unit
from kb.errors import SplitError as SplitError  # re-exported
from kb.passage import Passage, make_passage_id
from kb.references import extract_citations, is_reference
from kb.sentences import split_sentences

SPLITTER_VERSION = "4"  # part of every text's fingerprint: a change here re-splits the corpus


@dataclass
class _Group:
    locator: str
    paragraphs: list[Paragraph] = field(default_factory=list)


def _groups(unit: Unit) -> list[_Group]:
    groups: list[_Group] = [_Group(unit.locator)]
    for paragraph in unit.paragraphs:
        if not paragraph.text.strip():
            continue
        if paragraph.number:
            groups.append(_Group(f"{unit.locator}.{paragraph.number.strip('.').lower()}"))
        groups[-1].paragraphs.append(paragraph)
    return [g for g in groups if g.paragraphs]


def _cut(text: str, max_chars: int) -> list[str]:
    """An oversize paragraph cut at its lines (points a), b) ...), and a line still too long at sentence ends."""
    if len(text) <= max_chars:
        return [text]
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= max_chars:
            out.append(line)
            continue
        run = ""
        for sentence in split_sentences(line):  # never inside "stk. 1", "nr. 25", "f.eks." (kb.sentences)
            if run and len(run) + 1 + len(sentence) > max_chars:
                out.append(run)
                run = sentence
            else:
                run = f"{run} {sentence}".strip()
        if run:
            out.append(run)
    return out


def _pieces(texts: list[str], max_chars: int) -> list[list[str]]:
    """Pack paragraphs into pieces of at most `max_chars`, cutting an oversize paragraph first."""
    parts = [part for text in texts for part in _cut(text, max_chars)]
    pieces: list[list[str]] = [[]]
    size = 0
    for part in parts:
        if pieces[-1] and size + len(part) > max_chars:
            pieces.append([])
            size = 0
        pieces[-1].append(part)
        size += len(part) + 1
    return [p for p in pieces if p]


def split_units(
    units: Iterable[Unit], doc: DocumentSpec, text: TextSpec, *, max_chars: int, origin: str = "corpus"
) -> list[Passage]:
    """Passages of one text, in document order, with references, citations and provenance."""
    passages: list[Passage] = []
    used: set[str] = set()
    text_key = text.key(doc.doc_id)
    for unit in units:
        unit_ref = f"{doc.doc_id}:{unit.locator}"
        for group in _groups(unit):
            ref = f"{doc.doc_id}:{group.locator}"
            if not is_reference(ref):
                raise SplitError(f"{text_key}: unit {unit.locator!r} gives {ref!r}, not a valid reference")
            page = next((p.page for p in group.paragraphs if p.page is not None), unit.page)
            piece = 0
            for chunk in _pieces([p.text.strip() for p in group.paragraphs], max_chars):
                piece += 1
                passage_id = make_passage_id(ref, text.language, text.version, piece)
                while passage_id in used:  # a source numbering the same point twice
                    piece += 1
                    passage_id = make_passage_id(ref, text.language, text.version, piece)
                used.add(passage_id)
                body = "\n".join(chunk)
                cites = [c for c in extract_citations(body, doc.doc_id) if c not in (ref, unit_ref)]
                passages.append(
                    Passage(
                        passage_id=passage_id,
                        ref=ref,
                        doc_id=doc.doc_id,
                        locator=group.locator,
                        title=doc.title,
                        heading=unit.heading,
                        text=body,
                        language=text.language,
                        version=text.version,
                        valid_from=text.valid_from,
                        valid_to=text.valid_to,
                        in_force=text.in_force,
                        page=page,
                        kind=doc.kind,
                        jurisdiction=doc.jurisdiction,
                        cites=cites,
                        url=text.url or doc.url,
                        order=len(passages),
                        piece=piece,
                        text_key=text_key,
                        origin=origin,
                        amended_by=unit.amended_by,
                        amending_refs=list(unit.amending_refs),
                    )
                )
    return passages
