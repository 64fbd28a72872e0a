"""Keeping the keyword index in step with the store: the BM25 index, the catalog, the unit index and the index stamp.

The writer's side (an ingest, an upload, a removal) under the write lock: after the store changed, `refresh` rebuilds
what no longer matches it and writes the index stamp last, atomically; service workers that read the new stamp
load the new files (`KnowledgeBase.reload_if_changed`). While a build embeds, the stamp carries PENDING_MARK and a
hash of which passages still wait for their vectors, so every text embedded changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from kb.keywords import IndexedRow, KeywordIndex
from kb.unit_index import UnitIndex

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase
    from kb.passage import Passage

PENDING_MARK = "+"  # in the index stamp: passages still wait for their vectors
KEYWORD_INDEX_FORMAT = "2"  # a change here rebuilds every keyword index (2: with the learnt lexicon)


class Indexer:
    """Rebuilds one knowledge base's keyword index, catalog and unit index from its store when they fall behind."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def store_fingerprint(self) -> str:
        """A hash of every passage id and content hash (and the keyword index's format): changes whenever the
        store's contents do."""
        digest = hashlib.sha256(KEYWORD_INDEX_FORMAT.encode())
        for pid, content_hash in sorted(self.kb.store.hashes().items()):
            digest.update(f"{pid}\x00{content_hash}\n".encode())
        return digest.hexdigest()

    def refresh(self) -> bool:
        """Rebuild the BM25 index and catalog when they do not match the store; True when rebuilt."""
        fingerprint = self.store_fingerprint()
        current = self.kb._keyword_state["index"]
        if current is not None and current.stamp == fingerprint and self.kb._keyword_state["catalog"] is not None:
            # the passages are the same; their vectors may not be (a build embeds text by text): a new stamp then
            self._write_index_stamp(fingerprint)
            self._refresh_units()
            return False
        rows: list[IndexedRow] = []
        texts: list[str] = []
        catalog: dict[str, Any] = {"documents": {}, "passages": 0}
        passages = list(self.kb.store.iter_passages())  # read once: the unit index is built from them too
        for passage in passages:
            rows.append(IndexedRow(passage.passage_id, passage.doc_id, passage.language, passage.kind, passage.in_force))
            texts.append(passage.indexed_text)
            doc = catalog["documents"].setdefault(
                passage.doc_id,
                {
                    "title": passage.title,
                    "kind": passage.kind,
                    "jurisdiction": passage.jurisdiction,
                    "origin": passage.origin,
                    "scenarios": [],
                    "versions": {},
                    "passages": {},
                },
            )
            doc["scenarios"].extend(s for s in passage.scenarios if s not in doc["scenarios"])
            version = doc["versions"].setdefault(
                passage.version,
                {"version": passage.version, "valid_from": str(passage.valid_from or ""), "in_force": passage.in_force, "languages": []},
            )
            # law-in-force (kb/versions.py): when a version stops applying, and how many of its passages are changed
            version.setdefault("valid_to", str(passage.valid_to or ""))
            version["passages"] = version.get("passages", 0) + 1
            if passage.amended_by and passage.locator.split(".")[0] not in version.setdefault("amended", []):
                version["amended"].append(passage.locator.split(".")[0])
            if passage.language not in version["languages"]:
                version["languages"].append(passage.language)
            doc["passages"][passage.language] = doc["passages"].get(passage.language, 0) + 1
            catalog["passages"] += 1
        for doc in catalog["documents"].values():
            doc["versions"] = sorted(doc["versions"].values(), key=lambda v: v["valid_from"], reverse=True)
        from kb.lexicon import learn_lexicon

        by_ref: dict[tuple[str, str], dict[str, str]] = {}  # (ref, version and piece) -> language -> text
        for row, text in zip(rows, texts, strict=True):
            ref, _, rest = row.passage_id.partition("/")
            by_ref.setdefault((ref, rest.split("/", 1)[-1]), {})[row.language] = text
        pairs = [(v["da"], v["en"]) for v in by_ref.values() if "da" in v and "en" in v]
        index = KeywordIndex.build(rows, texts, stamp=fingerprint, lexicon=learn_lexicon(pairs))
        self.kb.settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.kb.settings.data_dir / "catalog.json.tmp"
        tmp.write_text(json.dumps(catalog, ensure_ascii=False, indent=1))
        os.replace(tmp, self.kb.settings.data_dir / "catalog.json")
        index.save(self.kb.settings.bm25_dir)
        self.kb._keyword_state.update(index=index, catalog=catalog, version=fingerprint)
        self._refresh_units(force=True, stamp=self._index_stamp_for(fingerprint), passages=passages)
        self._write_index_stamp(fingerprint)  # last: a worker that sees it finds the index, catalog and units in place
        return True

    def _index_stamp_for(self, fingerprint: str) -> str:
        """The store fingerprint, and while passages wait for their vectors "+" and a hash of which: every text
        a build embeds changes the stamp, so workers reload (and reopen an embedded store) to see its vectors."""
        pending = self.kb.store.pending()
        if not pending:
            return fingerprint
        return fingerprint + PENDING_MARK + hashlib.sha256("\n".join(sorted(pending)).encode()).hexdigest()[:16]

    def _write_index_stamp(self, fingerprint: str) -> None:
        stamp = self._index_stamp_for(fingerprint)
        self.kb._keyword_state.update(version=stamp, pending=self.kb.store.pending() if PENDING_MARK in stamp else {})
        path = self.kb.settings.index_stamp_file
        if self.kb._read_index_stamp() == stamp:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(stamp + "\n")
        os.replace(tmp, path)

    def _refresh_units(self, force: bool = False, stamp: str | None = None, passages: list[Passage] | None = None) -> None:
        """Rebuild and save the unit index when the keyword index was rebuilt (`force`), or when the vectors it
        averages have all landed since it was saved; while a build still embeds, the saved one (BM25 over every
        unit, vectors where there were any) serves, so no text costs a whole rebuild."""
        stamp = stamp or self.kb._read_index_stamp()
        saved = UnitIndex.load(self.kb.settings.units_dir)
        if not force and (PENDING_MARK in stamp or (saved is not None and saved.stamp == stamp)):
            return
        units = self.build_units(stamp, passages)
        units.save(self.kb.settings.units_dir)
        self.kb.__dict__["_units"] = (stamp, units)

    def build_units(self, stamp: str, passages: list[Passage] | None = None) -> UnitIndex:
        """The unit index over the store's passages (`passages`, when the caller has just read them all)."""
        if passages is None:
            passages = list(self.kb.store.iter_passages())
        vectors = self.kb.store.vectors([p.passage_id for p in passages])
        return UnitIndex.build(passages, vectors, stamp, self.kb.settings.exact_dense_max)
