"""The clause view: one provision with its language versions, what it cites, what cites it, and the most similar
provisions in the other documents, so a contract clause leads to the law behind it.

The clause finder's page (`/clauses/<ref>`) and `GET /api/clauses/{ref}` show it; `eval.bench_clauses` times it.
"""

from __future__ import annotations

from typing import Any

from kb.knowledge_base import KnowledgeBase
from kb.passage import Passage
from kb.references import covers, parent_references

# The kinds that are law: a contract clause or a piece of guidance leads to these.
LAW_KINDS = ("regulation", "directive", "act")
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
    }
