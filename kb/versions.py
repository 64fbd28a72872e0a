"""The version in force, per provision and across languages.

An act may have its newest version in one language only: the AI Act as amended
by Regulation (EU) 2026/1744 exists in English, its Danish text is the 2024
original. DESIGN's rule: a provision the amendment did not change keeps the
Danish text as in force; a changed one is answered from the wording in force
(English), and a Danish answer says so in Danish.

`settle_in_force` applies the rule to the stored passages after each ingest (the
ingest runs text by text; which Danish articles the English consolidation
changed is known only once both are in). The rest answers from what it settled:
which parallel passage stands in for a hit in another language, which passages
applied on a past date, and the notes and version labels an answer shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from kb.match import Match

if TYPE_CHECKING:
    from kb.passage import Passage

DANISH_MONTHS = (
    "januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober", "november",
    "december",
)


def unit_of(passage: Passage) -> str:
    """The unit a passage belongs to: `art-113` for `art-113.c`."""
    return passage.locator.split(".")[0]


@dataclass(frozen=True)
class TextInfo:
    """What the manifest says of one text: enough to settle its passages."""

    key: str
    doc_id: str
    language: str
    valid_from: date
    in_force: bool


def settled_in_force(texts: list[TextInfo], passages: list[Passage]) -> dict[str, bool]:
    """passage_id -> in force, for the passages of one document's texts.

    The newest text in force (latest valid_from) rules. A text in force in another language that is older keeps a
    passage in force only where the newest text has its unit and did not amend it, or amended the unit but left
    the passage's point worded as it was (compared with the same language's earlier version). Every other passage is as its
    manifest entry says (so removing the consolidation restores the Danish text whole)."""
    in_force = [t for t in texts if t.in_force]
    by_key = {t.key: t for t in texts}
    out = {p.passage_id: by_key[p.text_key].in_force for p in passages if p.text_key in by_key}
    if not in_force:
        return out
    newest = max(in_force, key=lambda t: t.valid_from)
    newest_units = {unit_of(p) for p in passages if p.text_key == newest.key}
    amended = {unit_of(p) for p in passages if p.text_key == newest.key and p.amended_by}
    older = {
        t.key
        for t in in_force
        if t.language != newest.language and t.valid_from < newest.valid_from
        # a language with its own newer version in force is not superseded by another language's
        and not any(o.language == t.language and o.valid_from >= newest.valid_from for o in in_force)
    }
    if not newest_units:
        return out
    changed = _changed_refs(texts, passages, newest)
    for p in passages:
        if p.text_key in older:
            unit = unit_of(p)
            # an amended article keeps the points the amendment left as they were ("deployer" in Article 3)
            out[p.passage_id] = unit in newest_units and (unit not in amended or p.ref not in changed)
    return out


def _changed_refs(texts: list[TextInfo], passages: list[Passage], newest: TextInfo) -> set[str]:
    """The references whose wording differs between the newest text and the version before it in the same language
    (or that only one of them has): the points an amendment actually changed, finer than the articles it names."""
    before = [t for t in texts if t.language == newest.language and t.valid_from < newest.valid_from]
    if not before:
        return {p.ref for p in passages if p.text_key == newest.key}
    original = max(before, key=lambda t: t.valid_from)

    def wording(key: str) -> dict[str, str]:
        pieces: dict[str, list[tuple[int, str]]] = {}
        for p in passages:
            if p.text_key == key:
                pieces.setdefault(p.ref, []).append((p.piece, " ".join(p.text.split())))
        return {ref: "\n".join(t for _, t in sorted(parts)) for ref, parts in pieces.items()}

    new, old = wording(newest.key), wording(original.key)
    return {ref for ref in new.keys() | old.keys() if new.get(ref) != old.get(ref)}


def settle_in_force(store: Any, model: str, texts: Iterable[TextInfo]) -> int:
    """Bring the stored `in_force` of every passage of `texts`' documents in line with `settled_in_force`; only
    metadata changes (the vectors are kept). Returns how many passages changed."""
    by_doc: dict[str, list[TextInfo]] = {}
    for text in texts:
        by_doc.setdefault(text.doc_id, []).append(text)
    changed = 0
    for doc_id, doc_texts in by_doc.items():
        if len(doc_texts) < 2:
            continue  # one text: in force as its manifest entry says, nothing to settle
        passages = store.find(Match(doc_id=doc_id, origin="corpus"))
        wanted = settled_in_force(doc_texts, passages)
        stale = [p for p in passages if p.passage_id in wanted and p.in_force != wanted[p.passage_id]]
        if not stale:
            continue
        vectors = store.vectors([p.passage_id for p in stale])
        import numpy as np

        fixed = [p.model_copy(update={"in_force": wanted[p.passage_id]}) for p in stale if p.passage_id in vectors]
        for start in range(0, len(fixed), 256):
            chunk = fixed[start : start + 256]
            store.add(chunk, np.stack([vectors[p.passage_id] for p in chunk]), model)
        changed += len(fixed)
    return changed


# --- reading -------------------------------------------------------------------------


def stands_in_for(hit: Passage, candidates: list[Passage]) -> Passage | None:
    """Among `candidates` (the same reference in the wanted language), the passage to show instead of `hit`:
    the same version and piece; else, for a hit in force, the piece in force (the Danish Article 26 of 2024 for
    the English Article 26 of the consolidation that did not change it). None when there is none."""
    same = next((c for c in candidates if c.version == hit.version and c.piece == hit.piece), None)
    if same is not None:
        return same
    if hit.in_force:
        return next((c for c in candidates if c.in_force and c.piece == hit.piece), None)
    return None


def version_valid_on(
    catalog: dict[str, Any], doc_id: str, version: str, language: str, as_of: date, in_force: bool | None = None
) -> bool:
    """Whether a passage (or unit row) of `version` in `language` applied on `as_of`. From the start of the newest
    version in force on, what is settled in force applies (`in_force`: per provision, across languages); before
    it, the version of the language that applied then (the latest valid_from not after `as_of`)."""
    versions = catalog["documents"].get(doc_id, {}).get("versions", [])
    starts = [v["valid_from"] for v in versions if v.get("in_force") and v["valid_from"]]
    day = as_of.isoformat()
    if in_force is not None and starts and day >= max(starts):
        return in_force
    applicable = [v for v in versions if v["valid_from"] and v["valid_from"] <= day and language in v["languages"]]
    return bool(applicable) and max(applicable, key=lambda v: v["valid_from"])["version"] == version


def valid_on(catalog: dict[str, Any], passage: Passage, as_of: date) -> bool:
    """`version_valid_on` for one passage."""
    return version_valid_on(catalog, passage.doc_id, passage.version, passage.language, as_of, passage.in_force)


def act_title(amended_by: str) -> str:
    """"2026/1744" -> "Regulation (EU) 2026/1744" (acts of this form after 2015 are named so)."""
    return f"Regulation (EU) {amended_by}" if "/" in amended_by and "corrigendum" not in amended_by else amended_by


def version_note(passage: Passage) -> str | None:
    """What a citation or the passage view says beside the version label of an amended provision."""
    if not passage.amended_by:
        return None
    since = f", in force from {passage.valid_from.day}.{passage.valid_from.month}.{passage.valid_from.year}" if passage.valid_from else ""
    return f"amended by {', '.join(act_title(a.strip()) for a in passage.amended_by.split(','))}{since}"


def language_notes(passages: Iterable[Passage], language: str) -> list[str]:
    """Notes for an answer in `language` that cites amended provisions in another language because the wording in
    force exists only there: in Danish, that the Danish text in the knowledge base is the original, which act
    changed the provision since when, and that the wording given is the one in force."""
    notes: list[str] = []
    seen: set[str] = set()
    for p in passages:
        unit = f"{p.doc_id}:{unit_of(p)}"
        if not p.amended_by or p.language == language or not p.in_force or unit in seen:
            continue
        seen.add(unit)
        acts = ", ".join(act_title(a.strip()) for a in p.amended_by.split(","))
        amending = " og ".join(p.amending_refs) if p.amending_refs else acts
        if language == "da":
            since = f" med virkning fra {p.valid_from.day}. {DANISH_MONTHS[p.valid_from.month - 1]} {p.valid_from.year}" if p.valid_from else ""
            notes.append(
                f"Den danske tekst i vidensbasen er den oprindelige fra 2024; bestemmelsen ({unit}) er ændret ved "
                f"{acts.replace('Regulation (EU)', 'forordning (EU)')}{since} ({amending}); her er den gældende "
                f"ordlyd ({p.version}, på {'engelsk' if p.language == 'en' else p.language})."
            )
        else:
            notes.append(
                f"The {p.language} wording in force is given: {unit} was amended by {acts} ({amending}); no "
                f"{language} version of the amended text is in the knowledge base."
            )
    return notes


def changed_refs(catalog: dict[str, Any], since: date, doc: str | None = None) -> list[str]:
    """The units (`ai-act:art-113`) an amendment changed in a version in force that applies from `since` or later:
    what `kb search --changed-since` and `/api/search?changed_since=` search within."""
    out: list[str] = []
    for doc_id, entry in sorted(catalog["documents"].items()):
        if doc and doc_id != doc:
            continue
        for version in entry.get("versions", []):
            if version.get("in_force") and version.get("valid_from", "") >= since.isoformat():
                out.extend(f"{doc_id}:{unit}" for unit in version.get("amended", []) if f"{doc_id}:{unit}" not in out)
    return out


def search_changed(kb: Any, query: str, since: date, k: int = 10, **filters: Any) -> list[Any]:
    """Search only the provisions an amendment applying from `since` on changed (in their wording in force)."""
    if not kb.is_built():
        from kb.errors import NotBuiltError

        raise NotBuiltError(str(kb.settings.data_dir))
    refs = changed_refs(kb.catalog, since, filters.get("doc"))
    return kb.search(query, k=k, within=refs, **filters) if refs else []


# --- when does it apply? -----------------------------------------------------------------------------------------

_WHEN_IT_APPLIES = (
    re.compile(r"\bfrom when\b|\bwhen\b.*\b(appl(y|ies)|take effect|enter into force)\b|\b(date of application|application date)\b", re.I),
    re.compile(r"\bhvornår\b.*\b(gælder|anvendes|finder\b.*\banvendelse|træder\b.*\bi kraft)\b|\bfra hvornår\b", re.I),
)
# The heading of the article that says when an EU act applies, in the languages of the corpus.
APPLICATION_HEADINGS = ("entry into force and application", "ikrafttræden og anvendelse")


def asks_when_it_applies(question: str) -> bool:
    """"From when do the obligations … apply?", "Hvornår gælder …?": a question about dates of application."""
    return any(pattern.search(question) for pattern in _WHEN_IT_APPLIES)


def with_application_dates(kb: Any, question: str, hits: list[Any], as_of: date | None) -> list[Any]:
    """A question about when rules apply gets the act's own article on entry into force and application (AI Act
    Art. 113, where the Digital Omnibus moved the dates) at the top of the evidence, in the version that applies:
    its words are dates, which neither the dense nor the keyword ranking puts near the question's subject."""
    if not hits or not asks_when_it_applies(question):
        return hits
    acts = [h.passage.doc_id for h in hits[:5] if h.passage.kind in ("regulation", "directive")]
    if not acts:
        return hits
    found = kb.search(
        " ".join(APPLICATION_HEADINGS), k=10, doc=acts[0], named=False, in_force_only=as_of is None
    )
    found = [
        h for h in found
        if any(title in h.passage.heading.lower() for title in APPLICATION_HEADINGS)
        and (as_of is None or valid_on(kb.catalog, h.passage, as_of))
    ]
    if not found:
        return hits
    top = max(h.score for h in hits)
    have = {h.passage.passage_id for h in found}
    lifted = [h.model_copy(update={"score": top + 0.01 * (len(found) - i)}) for i, h in enumerate(found)]
    return lifted + [h for h in hits if h.passage.passage_id not in have]
