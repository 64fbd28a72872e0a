"""The clause view: one provision with its language versions, what it cites, what cites it, and the most similar
provisions in the other documents, so a contract clause leads to the law behind it.

The clause finder's page (`/clauses/<ref>`) and `GET /api/clauses/{ref}` show it; `eval.bench_clauses` times it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from kb.knowledge_base import KnowledgeBase
from kb.passage import Passage
from kb.references import covers, parent_references
from kb.transpositions import transposition_view
from kb.vocabulary import LAW_KINDS

# The kinds that are law: a contract clause or a piece of guidance leads to these.
MAX_LINKS = 60


def links(kb: KnowledgeBase, refs: list[str], language: str) -> list[dict[str, Any]]:
    """Each reference with the title and heading of its first passage (in `language` where it exists)."""
    from kb.provisions import NamedProvision

    out = []
    for ref in refs[:MAX_LINKS]:
        doc_id, _, locator = ref.partition(":")
        found = kb.provision_passages(NamedProvision(locator, (doc_id,)), language, limit=1)
        first = found[0] if found else None
        out.append(
            {
                "ref": ref,
                "doc_id": doc_id,
                "title": first.title if first else None,
                "heading": first.heading if first else None,
                "known": first is not None,
            }
        )
    return out


def clause_view(kb: KnowledgeBase, ref: str, language: str, similar: int) -> dict[str, Any] | None:
    """The clause view of `ref`, or None when the knowledge base holds no passage in force under it."""
    passages = kb.passages_for_ref(ref)
    if not passages:
        return None
    by_language: dict[str, list[Passage]] = {}
    for passage in passages:
        by_language.setdefault(passage.language, []).append(passage)
    shown = language if language in by_language else min(by_language)
    own = by_language[shown]
    parallel = [p for lang, ps in sorted(by_language.items()) if lang != shown for p in ps]
    cited = sorted({c for p in passages for c in p.cites if not covers(ref, c)})
    kinds = list(LAW_KINDS) if own[0].kind not in LAW_KINDS else None
    hits = kb.similar_in_other_documents(passages, k=similar, kinds=kinds, language=shown)
    parents = parent_references(ref)
    return {
        "ref": ref,
        "doc_id": own[0].doc_id,
        "title": own[0].title,
        "kind": own[0].kind,
        "heading": own[0].heading,
        "language": shown,
        "languages": sorted(by_language),
        "parent": parents[1] if len(parents) > 1 else None,
        "passages": own,
        "parallel": parallel,
        "cites": links(kb, cited, shown),
        "cited_by": links(kb, kb.cited_by(ref), shown),
        "similar": [{**hit.summary(), "kind": hit.passage.kind} for hit in hits],
        "version": own[0].version,
        "version_note": next((p.version_note for p in own if p.version_note), None),
        "change": change_view(kb, ref, own, language),
        "transpositions": [{**t, "links": links(kb, t["refs"], shown)} for t in transposition_view(ref)],
    }


_TOKEN = re.compile(r"\s*\S+\s*")


def marked_change(old: str, new: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Word by word, what the amendment changed: the old text with its removed words marked and the new text with
    its added words marked, each as segments {text, changed}."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []

    def put(side: list[dict[str, Any]], text: str, changed: bool) -> None:
        if not text:
            return
        if side and side[-1]["changed"] == changed:
            side[-1]["text"] += text
        else:
            side.append({"text": text, "changed": changed})

    words_a, words_b = [t.strip() for t in a], [t.strip() for t in b]  # words compared, their spacing kept
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).get_opcodes():
        if op == "equal":
            put(before, "".join(a[i1:i2]), False)
            put(after, "".join(b[j1:j2]), False)
        else:
            put(before, "".join(a[i1:i2]), True)
            put(after, "".join(b[j1:j2]), True)
    return before, after


def change_view(kb: KnowledgeBase, ref: str, own: list[Passage], language: str) -> dict[str, Any] | None:
    """For a provision an amendment changed: the wording it replaced (the version before, in the same language
    where there is one) beside the wording in force, the changed words marked, and the amending act's provisions.
    Also a Danish reader of a changed provision learns that the Danish text is the superseded original."""
    amended = [p for p in own if p.amended_by]
    if not amended:
        return None
    shown = own[0]
    older = [
        p for p in kb.passages_for_ref(ref, in_force_only=False)
        if not p.in_force and p.version != shown.version and str(p.valid_from or "") < str(shown.valid_from or "")
    ]
    same_language = [p for p in older if p.language == shown.language]
    pool = same_language or older
    if not pool:
        return None
    old_version = max(pool, key=lambda p: str(p.valid_from or "")).version
    old = sorted((p for p in pool if p.version == old_version), key=lambda p: p.order)
    before, after = marked_change("\n".join(p.text for p in old), "\n".join(p.text for p in own))
    amending = sorted({r for p in amended for r in p.amending_refs})
    superseded = sorted({p.language for p in older if p.language != shown.language})
    return {
        "amended_by": amended[0].amended_by,
        "version_note": amended[0].version_note,
        "old_version": old_version,
        "old_language": old[0].language,
        "new_version": shown.version,
        "old": before,
        "new": after,
        "amending": links(kb, amending, language),
        "superseded_languages": superseded,  # e.g. ["da"]: that text is the original, the wording in force is shown
    }
