"""A Formex 4 consolidation (`CONS.ACT`) to units: the wording in force, and per unit the act that changed it.

EUR-Lex consolidates an act with its amendments into one text. The Formex of it
marks every passage an amending act brought with a pair of processing
instructions: `<?CLG.MDFO ID=… ACTION="REPLACED|INSERTED|DELETED" ACTIVE.DOC="32026R1744"
ACTIVE.LOC="AR:1;PT:51"?>` opens it, `<?CLG.MDFC IDREF=…?>` closes it. We keep the
wording in force (text between a DELETED pair is the repealed wording and is
dropped), and a unit (article, annex) that a marker opens in, or that lies inside
one, carries `amended_by` ("2026/1744") and the amending act's provisions
(`digital-omnibus-ai:art-1.51`, from ACTIVE.LOC, with the doc ids the manifest
gives in the `amending_docs` option: CELEX -> doc id).

The first file is the consolidation; the files after it are the original act
(Formex XML or EUR-Lex HTML), read for two things: its recitals, which a
consolidation never carries but which still belong to the act, and a check that
every article or annex in one version only is explained by an INSERTED or DELETED
marker. Every check runs before the first unit is given back, so a faulty
consolidation (a marker that never closes, a provision in one version only)
fails whole, with the file and the provision named, and nothing of it is written.

Articles and annexes are rendered by the Formex parser's own functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from ingest.parsers import formex, get_parser, register
from ingest.units import ParseError, Unit

_PSEUDO_ATTR = re.compile(r'([A-Z][A-Z.]*)="([^"]*)"')
_CELEX_ACT = re.compile(r"^3(\d{4})[RLD](\d{4})(?:R\((\d+)\))?$")
_UNIT_TAGS = frozenset({"ARTICLE", "CONS.ANNEX"})


@dataclass
class Marker:
    """One amendment marker: what the amending act did, and where in that act it says so."""

    id: str
    action: str
    celex: str
    location: str
    line: int | None
    unit: str  # the provision the marker opened in ("Article 113", "the act" outside any)
    closed: bool = False


@dataclass
class _UnitMarks:
    """A unit and the markers that enclose it whole (open at its start) or open inside it."""

    element: etree._Element
    enclosing: list[Marker] = field(default_factory=list)
    inside: list[Marker] = field(default_factory=list)

    @property
    def markers(self) -> list[Marker]:
        return self.enclosing + self.inside

    @property
    def inserted(self) -> bool:
        """The whole unit came with the amending act (Article 4a, Annex XIV)."""
        return any(m.action == "INSERTED" for m in self.enclosing)


def act_number(celex: str) -> str:
    """The amending act as a reader names it: CELEX 32026R1744 -> "2026/1744", a corrigendum 32014L0024R(17) ->
    "2014/24 corrigendum 17"; other CELEX numbers as given."""
    match = _CELEX_ACT.match(celex)
    if not match:
        return celex
    return f"{match[1]}/{int(match[2])}" + (f" corrigendum {match[3]}" if match[3] else "")


def _attrs(pi: etree._ProcessingInstruction) -> dict[str, str]:
    return dict(_PSEUDO_ATTR.findall(pi.text or ""))


def _unit_label(el: etree._Element | None) -> str:
    """How an error names the provision: the article's or annex's title as printed."""
    if el is None:
        return "the act (outside any article or annex)"
    title = el.find("TI.ART") if el.tag == "ARTICLE" else el.find("TITLE/TI")
    return formex._clean(" ".join(title.itertext())) if title is not None else el.tag


def _enclosing_unit(node: Any) -> etree._Element | None:
    return next((a for a in node.iterancestors() if a.tag in _UNIT_TAGS), None)


def _is_unit(el: Any) -> bool:
    if not isinstance(el.tag, str) or el.tag not in _UNIT_TAGS:
        return False
    return not any(a.tag == "QUOT.S" for a in el.iterancestors())  # a provision quoted in another one


def _read_markers(path: Path, root: etree._Element) -> tuple[list[_UnitMarks], list[Marker]]:
    """Walk the text in document order: which markers are open at each unit's start or open inside it.

    Raises ParseError for a marker that closes without opening, or opens and never closes."""
    units: list[_UnitMarks] = []
    open_markers: dict[str, Marker] = {}
    every: list[Marker] = []
    current: list[_UnitMarks] = []  # the unit being walked (units do not nest)
    for node in root.iter():
        if isinstance(node, etree._ProcessingInstruction):
            if node.target == "CLG.MDFO":
                attrs = _attrs(node)
                marker = Marker(
                    id=attrs.get("ID", ""),
                    action=attrs.get("ACTION", ""),
                    celex=attrs.get("ACTIVE.DOC", ""),
                    location=attrs.get("ACTIVE.LOC", ""),
                    line=node.sourceline,
                    unit=_unit_label(_enclosing_unit(node)),
                )
                if not marker.id:
                    raise ParseError(path, f"{marker.unit}: amendment marker without an ID", line=node.sourceline)
                open_markers[marker.id] = marker
                every.append(marker)
                unit = _enclosing_unit(node)
                if unit is not None and current and current[-1].element is unit:
                    current[-1].inside.append(marker)
            elif node.target == "CLG.MDFC":
                ref = _attrs(node).get("IDREF", "")
                if ref not in open_markers:
                    where = _unit_label(_enclosing_unit(node))
                    raise ParseError(path, f"{where}: amendment marker {ref!r} closes but never opened", line=node.sourceline)
                open_markers.pop(ref).closed = True
        elif _is_unit(node):
            marks = _UnitMarks(node, list(open_markers.values()))
            units.append(marks)
            current.append(marks)
    if open_markers:
        first = next(iter(open_markers.values()))
        raise ParseError(
            path,
            f"{first.unit}: amendment marker {first.id} ({first.action} by {first.celex}, {first.location}) "
            "opens and never closes",
            line=first.line,
        )
    return units, every


def _drop_deleted(path: Path, root: etree._Element) -> None:
    """Remove the repealed wording a DELETED pair encloses (its MDFO and MDFC are siblings)."""
    for pi in list(root.iter(etree.ProcessingInstruction)):
        if pi.target != "CLG.MDFO" or _attrs(pi).get("ACTION") != "DELETED":
            continue
        marker_id = _attrs(pi).get("ID")
        doomed: list[Any] = []
        sibling = pi.getnext()
        while sibling is not None and not (
            isinstance(sibling, etree._ProcessingInstruction)
            and sibling.target == "CLG.MDFC"
            and _attrs(sibling).get("IDREF") == marker_id
        ):
            doomed.append(sibling)
            sibling = sibling.getnext()
        if sibling is None:
            raise ParseError(
                path,
                f"{_unit_label(_enclosing_unit(pi))}: deleted wording of marker {marker_id} does not end within "
                "the same element",
                line=pi.sourceline,
            )
        parent = pi.getparent()
        for node in doomed:
            tail = node.tail
            parent.remove(node)
            if tail and tail.strip():
                raise ParseError(path, f"text after deleted wording of marker {marker_id}", line=pi.sourceline)


def _amending_ref(marker: Marker, docs: dict[str, str]) -> str | None:
    """`AR:1;PT:51;PT:a` of CELEX 32026R1744 -> `digital-omnibus-ai:art-1.51` (the article's numbered point)."""
    doc_id = docs.get(marker.celex)
    if not doc_id:
        return None
    parts = dict(part.split(":", 1) for part in marker.location.split(";") if ":" in part)
    article = parts.get("AR")
    if not article:
        return None
    point = marker.location.split(";")[1].split(":", 1)[1] if ";PT:" in marker.location else ""
    return f"{doc_id}:art-{article.lower()}" + (f".{point.lower()}" if point else "")


def _base_units(files: list[Path], options: dict[str, Any]) -> list[Unit]:
    """The original act's units, read with the parser its format needs."""
    if not files:
        return []
    html = [f for f in files if f.suffix.lower() in {".html", ".htm", ".xhtml"}]
    parser = get_parser("eurlex_html" if html else "formex")
    return list(parser(files, {k: v for k, v in options.items() if k == "language"}))


def _consolidated_units(path: Path, options: dict[str, Any]) -> tuple[list[Unit], set[str]]:
    """The consolidation's articles and annexes, each with what amended it; and the locators marked inserted."""
    tree = formex._parse_file(path, keep_pis=True)
    root = tree.getroot()
    if root.tag != "CONS.ACT":
        raise ParseError(path, f"not a Formex consolidation: the root is <{root.tag}>, not <CONS.ACT>", line=1)
    marks, _ = _read_markers(path, root)
    _drop_deleted(path, root)
    docs = {str(k): str(v) for k, v in (options.get("amending_docs") or {}).items()}
    doc = formex._Doc(options)
    units: list[Unit] = []
    inserted: set[str] = set()
    for mark in marks:
        el = mark.element
        unit = formex._article(el, path, doc) if el.tag == "ARTICLE" else formex._annex(el, path, doc)
        if mark.markers:
            acts = list(dict.fromkeys(act_number(m.celex) for m in mark.markers if m.celex))
            unit.amended_by = ", ".join(acts) or None
            unit.amending_refs = sorted({r for m in mark.markers if (r := _amending_ref(m, docs))})
        if mark.inserted:
            inserted.add(unit.locator)
        units.append(unit)
    if not units:
        raise ParseError(path, "a consolidation without articles or annexes")
    return units, inserted


def _texts(unit: Unit) -> list[tuple[str | None, str]]:
    return [(None, unit.heading)] + [(p.number, p.text) for p in unit.paragraphs]


@register("formex_consolidated")
def parse(files: list[Path], options: dict[str, Any]) -> Iterator[Unit]:
    """Units of a consolidation: the original's recitals, then the articles and annexes in force."""
    if not files:
        raise ParseError(Path("."), "no consolidation file given")
    path, base_files = Path(files[0]), [Path(f) for f in files[1:]]
    options = options or {}
    units, inserted = _consolidated_units(path, options)
    base = _base_units(base_files, options)
    recitals = [u for u in base if u.locator.startswith("recital-")]
    if base:
        own = {u.locator for u in units}
        original = {u.locator for u in base if not u.locator.startswith("recital-")}
        for locator in sorted(own - original):
            if locator not in inserted:
                raise ParseError(
                    path, f"{locator} is in the consolidation but not in the original, and no marker inserts it"
                )
        for locator in sorted(original - own):
            raise ParseError(path, f"{locator} is in the original ({base_files[0].name}) but not in the consolidation")
        if all(f.suffix.lower() == ".xml" for f in base_files):  # the same renderer on both sides: texts comparable
            by_locator = {u.locator: u for u in base}
            for unit in units:
                old = by_locator.get(unit.locator)
                if not unit.amended_by and old is not None and _texts(unit) != _texts(old):
                    raise ParseError(path, f"{unit.locator} differs from the original but no marker says it was amended")
    yield from recitals
    yield from units
