"""The knowledge base object: one core that the CLI, the service and the evaluation call."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from kb.answer import Answer, AnswerSection, Citation, ScenarioInfo
from kb.errors import InvalidFilterError, InvalidQuestionError, NotBuiltError, UnknownPassageError
from kb.keywords import IndexedRow, KeywordIndex
from kb.passage import Passage
from kb.question import Question
from kb.references import covers
from kb.retrieval import RankedUnit, Retriever, SearchHit
from kb.scenarios import in_profile, profile_refs
from kb.settings import Settings
from kb.match import Match
from kb.store import PassageStore, open_client
from kb.text import check_text
from kb.timing import stage
from kb.unit_index import UnitIndex
from kb.vocabulary import LANGUAGES, SCENARIO_IDS

log = logging.getLogger(__name__)


def _collection_name(model: str) -> str:
    """One Chroma collection per embedding model, so switching backends never mixes vector spaces."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in model.lower()).strip("-")
    return f"passages-{slug}"[:60].rstrip("-")


class KnowledgeBase:
    """Passages, their vectors and keyword index, and search over them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._reload_lock = threading.Lock()

    # --- the parts, loaded once per process --------------------------------------

    @cached_property
    def embedder(self) -> Any:
        from kb.embedding import make_embedder

        return make_embedder(self.settings)

    @cached_property
    def store(self) -> PassageStore:
        """The Chroma store, opened on first use (a server that is down now is reached once it is back)."""
        s = self.settings
        return PassageStore(
            lambda: open_client(s.chroma_dir, s.chroma_url, s.chroma_timeout),
            _collection_name(self.embedder.model_name),
            location=s.chroma_url or str(s.chroma_dir),
        )

    @cached_property
    def _keyword_state(self) -> dict[str, Any]:
        return self._load_keyword_state()

    def _load_keyword_state(self) -> dict[str, Any]:
        # the stamp is read before the files: an ingest finishing meanwhile is picked up at the next check
        version = self._read_index_stamp()
        # a stamp with "+" says a build is still embedding: which passages have no vector yet (dense skips them)
        pending = self.store.pending() if PENDING_MARK in version else {}
        return {
            "index": KeywordIndex.load(self.settings.bm25_dir),
            "catalog": self._read_catalog(),
            "version": version,
            "pending": pending,
        }

    def _read_index_stamp(self) -> str:
        try:
            return self.settings.index_stamp_file.read_text().strip()
        except FileNotFoundError:
            return ""

    @property
    def index_version(self) -> str:
        """The stamp of the keyword index and catalog this process answers from (the store fingerprint)."""
        return self._keyword_state["version"]

    def reload_if_changed(self) -> bool:
        """Load the keyword index and catalog again when an ingest (any process) has rebuilt them; True if it did.

        Service workers keep both read-only in memory and call this once per request: it costs one read of
        a 64-byte stamp file, which each rebuild writes last and atomically. Never a timer, never a rebuild
        here. The embedded Chroma client is reopened too: it keeps its vector index in memory and would not
        see another process's writes (a Chroma server needs no such step).
        """
        if "_keyword_state" not in self.__dict__:
            return False  # nothing loaded yet: the first use loads the current files
        if self._read_index_stamp() == self._keyword_state["version"]:
            return False
        with self._reload_lock:
            if self._read_index_stamp() == self._keyword_state["version"]:
                return False  # another thread of this process got there first
            if not self.settings.chroma_url and "store" in self.__dict__:
                self.store.reopen()  # first: the pending passages are read from the store as it is now
            state = self._load_keyword_state()
            if state["index"] is None and state["version"]:
                return False  # caught between the renames of a later rebuild: keep answering, look again next time
            self.__dict__["_keyword_state"] = state
        return True

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Be the only writer of passages: a corpus ingest, an upload or a removal, in any thread or process.

        Two writers at once would lose work: an embedded Chroma client keeps its vector index in memory and
        would write over another process's additions, and the keyword index rebuilt last would miss the other
        writer's passages. So every writer holds an flock on data_dir/.write.lock (the kernel releases it if
        the holder dies), says on the log when it has to wait, and on getting it first catches up with what
        the writer before it stored. Re-entrant within a thread. Readers never wait.
        """
        lock = self._write_lock
        outermost = not lock.is_locked  # the lock counts this thread's acquisitions (thread_local)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("waiting for another writer of the knowledge base to finish (%s is locked)", lock.lock_file)
            lock.acquire()
        try:
            if outermost:
                self.reload_if_changed()  # the embedded store reopened if the writer before us changed it
            yield
        finally:
            lock.release()

    @cached_property
    def _write_lock(self) -> FileLock:
        """An flock (filelock) on data_dir/.write.lock, re-entrant within a thread, kept as a file between writers."""
        path = self.settings.write_lock_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path, thread_local=True, preserve_lock_file=True)

    def not_embedded(self) -> list[str]:
        """The texts (doc/language/version) with passages that have no vector yet, while a build embeds them: those
        passages are found by keyword search only. Empty once the build is done."""
        self.reload_if_changed()
        return sorted(set(self._keyword_state.get("pending", {}).values()))

    def check_store(self) -> int:
        """The number of passages in the store: proof it answers (StoreUnavailableError when it does not)."""
        return self.store.count()

    @property
    def keywords(self) -> KeywordIndex:
        index = self._keyword_state["index"]
        if index is None:
            raise NotBuiltError(str(self.settings.data_dir))
        return index

    @property
    def catalog(self) -> dict[str, Any]:
        """Documents, versions and passage counts, written with the keyword index."""
        catalog = self._keyword_state["catalog"]
        if catalog is None:
            raise NotBuiltError(str(self.settings.data_dir))
        return catalog

    def _read_catalog(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.settings.data_dir / "catalog.json").read_text())
        except FileNotFoundError:
            return None

    def is_built(self) -> bool:
        """Whether there is a keyword index to answer from; picks up a newer one first (`reload_if_changed`)."""
        self.reload_if_changed()
        return self._keyword_state["index"] is not None and bool(self._keyword_state["index"].rows)

    # --- keeping the keyword index in step with the store ------------------------

    def store_fingerprint(self) -> str:
        """A hash of every passage id and content hash (and the keyword index's format): changes whenever the
        store's contents do."""
        digest = hashlib.sha256(KEYWORD_INDEX_FORMAT.encode())
        for pid, content_hash in sorted(self.store.hashes().items()):
            digest.update(f"{pid}\x00{content_hash}\n".encode())
        return digest.hexdigest()

    def refresh_keyword_index(self) -> bool:
        """Rebuild the BM25 index and catalog when they do not match the store; True when rebuilt."""
        fingerprint = self.store_fingerprint()
        current = self._keyword_state["index"]
        if current is not None and current.stamp == fingerprint and self._keyword_state["catalog"] is not None:
            # the passages are the same; their vectors may not be (a build embeds text by text): a new stamp then
            self._write_index_stamp(fingerprint)
            self._refresh_units()
            return False
        rows: list[IndexedRow] = []
        texts: list[str] = []
        catalog: dict[str, Any] = {"documents": {}, "passages": 0}
        for passage in self.store.iter_passages():
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
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings.data_dir / "catalog.json.tmp"
        tmp.write_text(json.dumps(catalog, ensure_ascii=False, indent=1))
        os.replace(tmp, self.settings.data_dir / "catalog.json")
        index.save(self.settings.bm25_dir)
        self._keyword_state.update(index=index, catalog=catalog, version=fingerprint)
        self._refresh_units(force=True, stamp=self._index_stamp_for(fingerprint))
        self._write_index_stamp(fingerprint)  # last: a worker that sees it finds the index, catalog and units in place
        return True

    def _index_stamp_for(self, fingerprint: str) -> str:
        """The store fingerprint, and while passages wait for their vectors "+" and a hash of which: every text
        a build embeds changes the stamp, so workers reload (and reopen an embedded store) to see its vectors."""
        pending = self.store.pending()
        if not pending:
            return fingerprint
        return fingerprint + PENDING_MARK + hashlib.sha256("\n".join(sorted(pending)).encode()).hexdigest()[:16]

    def _write_index_stamp(self, fingerprint: str) -> None:
        stamp = self._index_stamp_for(fingerprint)
        self._keyword_state.update(version=stamp, pending=self.store.pending() if PENDING_MARK in stamp else {})
        path = self.settings.index_stamp_file
        if self._read_index_stamp() == stamp:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(stamp + "\n")
        os.replace(tmp, path)

    def _refresh_units(self, force: bool = False, stamp: str | None = None) -> None:
        """Rebuild and save the unit index when the keyword index was rebuilt (`force`), or when the vectors it
        averages have all landed since it was saved; while a build still embeds, the saved one (BM25 over every
        unit, vectors where there were any) serves, so no text costs a whole rebuild."""
        stamp = stamp or self._read_index_stamp()
        saved = UnitIndex.load(self.settings.units_dir)
        if not force and (PENDING_MARK in stamp or (saved is not None and saved.stamp == stamp)):
            return
        units = self._build_units(stamp)
        units.save(self.settings.units_dir)
        self.__dict__["_units"] = (stamp, units)

    # --- reading ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """DESIGN's `kb stats` object: documents with title, versions and passages per language."""
        catalog = self.catalog
        return {
            "documents": {
                doc_id: {
                    "title": doc["title"],
                    "kind": doc["kind"],
                    "origin": doc.get("origin", "corpus"),
                    "versions": doc["versions"],
                    "passages": doc["passages"],
                }
                for doc_id, doc in sorted(catalog["documents"].items())
            },
            "passages": catalog["passages"],
        }

    def check_filters(self, doc: str | None = None, kind: str | None = None, language: str | None = None) -> None:
        """Raise InvalidFilterError when a filter names something the knowledge base does not hold."""
        documents = self.catalog["documents"]
        if doc is not None and doc not in documents:
            raise InvalidFilterError("doc", doc, sorted(documents))
        kinds = sorted({d["kind"] for d in documents.values()})
        if kind is not None and kind not in kinds:
            raise InvalidFilterError("kind", kind, kinds)
        languages = sorted({lang for d in documents.values() for lang in d["passages"]})
        if language is not None and language not in languages:
            raise InvalidFilterError("language", language, languages)

    def embed_query(self, query: str) -> np.ndarray:
        with stage("embed"):
            return self._query_vectors(query)

    @cached_property
    def _query_vectors(self) -> Any:
        """Query vectors cached per knowledge base: the same question (or an eval rerun) embeds once."""

        @lru_cache(maxsize=4096)
        def embed(query: str) -> np.ndarray:
            return np.asarray(self.embedder.get_query_embedding(query), dtype=np.float32)

        return embed

    # --- retrieval (kb/retrieval.py): the facade ----------------------------------------

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self)

    def search(
        self,
        query: str,
        k: int = 10,
        doc: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        in_force_only: bool = True,
        named: bool = True,
        mode: str = "hybrid",
        within: list[str] | None = None,
    ) -> list[SearchHit]:
        """Hybrid search over passages, named provisions first; best first (`Retriever.search`)."""
        return self.retriever.search(query, k, doc, kind, language, in_force_only, named, mode, within)

    def retrieve(
        self,
        question: str,
        language: str,
        profile: list[str],
        k: int = 8,
        doc: str | None = None,
        kind: str | None = None,
        as_of: date | None = None,
    ) -> list[SearchHit]:
        """Evidence for a question: the passages of the best-ranked units (`Retriever.retrieve`)."""
        return self.retriever.retrieve(question, language, profile, k, doc, kind, as_of)

    def rank_units(
        self,
        q: Question,
        hits: list[SearchHit],
        profile: list[str],
        doc: str | None = None,
        kind: str | None = None,
        as_of: date | None = None,
        exclude: frozenset[str] = frozenset(),
        trained: bool = True,
    ) -> list[RankedUnit]:
        """The units that may hold the answer, best first, with the ranker's scores (`Retriever.rank_units`)."""
        return self.retriever.rank_units(q, hits, profile, doc, kind, as_of, exclude, trained)

    def provision_passages(
        self,
        provision: Any,
        preferred_language: str,
        doc: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        in_force_only: bool = True,
        limit: int = 4,
    ) -> list[Passage]:
        """The passages of a named provision, in document order, in the preferred language where it exists."""
        return self.retriever.provision_passages(provision, preferred_language, doc, kind, language, in_force_only, limit)

    def _passages_by_id(self, passage_ids: list[str]) -> dict[str, Passage]:
        """The passages with these ids, from a cache kept until the store changes (the keyword index's stamp), the rest
        from Chroma: fetching 20 passages' text and metadata costs 6-9 ms, and the same passages come up again and again."""
        cache = self._passage_cache
        if cache.get("\x00stamp") != self.keywords.stamp or len(cache) > 50_000:
            cache.clear()
            cache["\x00stamp"] = self.keywords.stamp
        missing = [pid for pid in passage_ids if pid not in cache]
        for passage in self.store.get(missing):
            cache[passage.passage_id] = passage
        return {pid: cache[pid] for pid in passage_ids if pid in cache}

    @cached_property
    def _passage_cache(self) -> dict[str, Any]:
        return {}

    def _unit_passages(self, unit: str) -> tuple[Passage, ...]:
        """Every stored passage of a unit (all documents, languages, versions), kept until the store changes (the
        keyword index's stamp): the provisions the best passages cite (Article 6, Annex I) recur in most answers,
        and each Chroma lookup of one costs 15-40 ms."""
        return self._unit_cache(self.keywords.stamp, unit)

    @cached_property
    def _unit_cache(self) -> Any:
        @lru_cache(maxsize=512)
        def find(stamp: str, unit: str) -> tuple[Passage, ...]:
            return tuple(self.store.find(Match(unit=unit)))

        return find

    def passage(self, passage_id: str) -> Passage:
        found = self.store.get([passage_id])
        if not found:
            raise UnknownPassageError(passage_id)
        return found[0]

    def parallel_versions(self, passage: Passage) -> list[Passage]:
        """The same reference in the other languages (same version label where there is one)."""
        others = self.store.find(Match(ref=passage.ref, not_language=passage.language))
        others.sort(key=lambda p: (p.version != passage.version, not p.in_force, p.language, p.piece))
        return others

    def neighbours(self, passage: Passage, before: int = 1, after: int = 1) -> list[Passage]:
        """The passages just before and after in the same text."""
        found = self.store.find(
            Match(text_key=passage.text_key, order_from=passage.order - before, order_to=passage.order + after)
        )
        return sorted((p for p in found if p.passage_id != passage.passage_id), key=lambda p: p.order)

    def passages_for_ref(self, ref: str, language: str | None = None, in_force_only: bool = True) -> list[Passage]:
        """Every passage whose reference is `ref` or below it, in document order."""
        from kb.references import parse_reference

        parsed = parse_reference(ref)
        if not self.is_built():
            raise NotBuiltError(str(self.settings.data_dir))
        ids = [  # from the keyword index, the passages from the cache: not a whole act from Chroma
            r.passage_id
            for r in self.keywords.rows
            if r.doc_id == parsed.doc_id
            and covers(ref, r.passage_id.partition("/")[0])
            and (not language or r.language == language)
            and (r.in_force or not in_force_only)
        ]
        found = self._passages_by_id(ids).values()
        return sorted(found, key=lambda p: (p.language, p.order))

    def cited_by(self, ref: str) -> list[str]:
        """References of the passages in force that cite `ref` or a reference below it (the reverse of `cites`),
        leaving out the provision's own parts citing each other."""
        stamp = self.keywords.stamp
        cached = self.__dict__.get("_reverse_citations")
        if cached is None or cached[0] != stamp:  # rebuilt when the store changes (the keyword index follows it)
            reverse: dict[str, set[str]] = {}
            for passage in self.store.find(Match(in_force=True, citing=True)):
                for cited in passage.cites:
                    reverse.setdefault(cited, set()).add(passage.ref)
            cached = self.__dict__["_reverse_citations"] = (stamp, reverse)
        citing = {c for cited, refs in cached[1].items() if covers(ref, cited) for c in refs}
        return sorted(c for c in citing if not covers(ref, c))

    def similar_in_other_documents(
        self, passages: list[Passage], k: int = 5, kinds: list[str] | None = None, language: str | None = None
    ) -> list[SearchHit]:
        """Provisions of other documents nearest in meaning to `passages` (a contract clause -> the provisions
        of law behind it), one hit per article or section, best first; shown in `language` where a version exists.

        The provision is the mean of its passages' stored vectors, in every language given: embedding its text
        as a query cut a long article short and tied the neighbours to the language shown (a Danish Article 26
        of the AI Act found NIS2's supervision articles, the English one the model contract's clauses on use).
        """
        if not passages or k <= 0:
            return []
        model = self.embedder.model_name
        stored = self.store.vectors_for_hashes(sorted({p.content_hash(model) for p in passages}))
        if not stored:  # passages that are not in the store have no neighbours in it either
            return []
        vector = np.mean(np.stack(list(stored.values())), axis=0)
        vector /= np.linalg.norm(vector) or 1.0
        own = passages[0].doc_id
        rows, row_of = self.keywords.rows, self.keywords.row_of

        pending = self._keyword_state.get("pending") or {}

        def wanted(pid: str) -> bool:
            if pid in pending:  # a placeholder vector, not the passage's own
                return False
            row = rows[row_of[pid]] if pid in row_of else None
            return row is not None and row.in_force and row.doc_id != own and (not kinds or row.kind in kinds)

        # an over-fetch of 1,000 filtered from the keyword index's fields costs 10 ms; Chroma's own filter 100 ms.
        # Exact over the vectors in memory when the unit index holds them (the same in every build and mode)
        exact = None if pending else self.retriever._dense_exact(vector, 1000, None, None, None, True)
        nearest = exact if exact is not None else self.store.query(vector, 1000)
        chosen = _one_per_unit([(pid, s) for pid, s in nearest if wanted(pid)], k)
        if len(chosen) < k:  # too few articles left after the filter: let Chroma filter
            others = Match(not_doc_id=own, in_force=True, kind=tuple(kinds) if kinds else None)
            chosen = _one_per_unit(self.store.query(vector, 10 * k, others), k)
        known = self._passages_by_id([pid for pid, _ in chosen])
        hits = [SearchHit(passage=known[pid], score=s, dense_score=s) for pid, s in chosen if pid in known]
        return self.retriever._in_language(hits, language) if language else hits

    # --- answering ------------------------------------------------------------------

    def idf(self, token: str) -> float:
        """Inverse document frequency of a stemmed token in the keyword index (rare words weigh more)."""
        return self.keywords.idf(token)

    def scenario_profile(self, scenario_id: str | None) -> list[str]:
        """What matters in a scenario: the organisation's own documents tagged with it at upload (as bare doc ids,
        first: the organisation said so), then the profile's provisions (kb/data/scenarios.yaml).
        No scenario (None, no clear one) has an empty profile: nothing is steered."""
        if scenario_id is None:
            return []
        tagged = sorted(d for d, doc in self.catalog["documents"].items() if scenario_id in doc.get("scenarios", []))
        return tagged + profile_refs(scenario_id)

    @property
    def units(self) -> UnitIndex:
        """The unit index of the store this process answers from: the saved one for the keyword index's stamp, or
        built from the store (a knowledge base built before units were indexed)."""
        self.keywords  # noqa: B018 (raises NotBuiltError before anything is built)
        stamp = self.index_version
        cached = self.__dict__.get("_units")
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with self._reload_lock:
            cached = self.__dict__.get("_units")
            if cached is None or cached[0] != stamp:
                saved = UnitIndex.load(self.settings.units_dir)
                # the saved index is the one for this stamp, or (while a build embeds) for the same passages
                fits = saved is not None and saved.stamp.split(PENDING_MARK)[0] == stamp.split(PENDING_MARK)[0]
                cached = (stamp, saved if fits else self._build_units(stamp))
                self.__dict__["_units"] = cached
        return cached[1]

    def _build_units(self, stamp: str) -> UnitIndex:
        passages = list(self.store.iter_passages())
        vectors = self.store.vectors([p.passage_id for p in passages])
        return UnitIndex.build(passages, vectors, stamp, self.settings.exact_dense_max)

    @property
    def ranker_model_path(self) -> Path:
        """The unit ranker trained for this knowledge base (data dir), else the one shipped (kb/data/ranker.json)."""
        from kb.ranker import MODEL_FILE

        own = self.settings.data_dir / "ranker.json"
        return own if own.exists() else MODEL_FILE

    def ask(
        self,
        question: str,
        scenario: str | None = None,
        language: str | None = None,
        top_k: int = 8,
        as_of: date | None = None,
    ) -> Answer:
        """A cited answer tied to a scenario, or a plain refusal with the nearest passages."""
        from kb.abstention import load_model
        from kb.answering import Composition, Evidence, compose, declined_text, paragraph_siblings
        from kb.language import detect_language

        question = check_question(question)
        language = check_language(language) or detect_language(question)
        with stage("scenario"):
            info = self.scenario_for(question, scenario, language)
        profile = self.scenario_profile(info.id)
        hits, evidence_signals = self.gather_evidence(question, language, profile, top_k=top_k, as_of=as_of)
        named = [h for h in hits if h.named]
        with stage("abstention"):
            if named:  # a named provision is answered, unless the question asks it about something it does not hold
                declines = not self._named_provision_holds(Question.parse(question, language), named)
            else:
                declines = not hits or load_model(self.abstention_model_path).should_decline(evidence_signals)
        if declines:
            see_also = [Citation.of(i, h.passage, h.score) for i, h in enumerate(hits[:3], 1)]
            return Answer(
                question=question,
                answer=declined_text(language, see_also),
                language=language,
                scenario=info,
                citations=[],
                abstained=True,
                see_also=see_also,
                **self._partial(),
            )
        evidence = [
            Evidence(h.passage, h.score, rank, named=h.named, in_profile=in_profile(profile, h.passage.ref))
            for rank, h in enumerate(hits)
        ]

        def extractive() -> Composition:
            return compose(question, language, evidence, info.label, profile, self.idf, siblings=paragraph_siblings(self._unit_passages))

        with stage("compose"):
            if self.generator is not None:
                composition, generator_name = self.generator.answer(question, language, evidence, info.label, extractive)
            else:
                composition, generator_name = extractive(), "extractive"
        from kb.versions import language_notes  # law-in-force: amended provisions cited in another language

        cited = self._passages_by_id([c.passage_id for c in composition.citations])  # quoted siblings included
        return Answer(
            question=question,
            answer=composition.text,
            language=language,
            scenario=info,
            citations=composition.citations,
            abstained=False,
            sentences=composition.sentences,
            generator=generator_name,
            **self._partial(),
            notes=language_notes([cited[c.passage_id] for c in composition.citations if c.passage_id in cited], language),
            sections=[AnswerSection.model_validate(vars(section)) for section in composition.sections],
        )

    def _dense_scores(self, hits: list[SearchHit]) -> list[float]:
        """The evidence's dense similarities. While a build embeds, the best evidence may have no vector yet: its
        similarity is unknown, not low, so the decision sees the calibration's mean similarity for it."""
        scores = [h.dense_score for h in hits if h.dense_score is not None]
        pending = self._keyword_state.get("pending")
        if pending and any(h.passage.passage_id in pending for h in hits[:3]):
            from kb.abstention import FEATURES, load_model

            scores.append(load_model(self.abstention_model_path).mean[FEATURES.index("dense_top")])
        return scores

    def _partial(self) -> dict[str, Any]:
        """An answer's `partial` and `not_embedded` while a build is embedding (keyword search only for those texts)."""
        missing = sorted(set((self._keyword_state.get("pending") or {}).values()))
        return {"partial": bool(missing), "not_embedded": missing}

    def _named_provision_holds(self, q: Question, named: list[SearchHit]) -> bool:
        """False when the question asks a named provision about two or more things none of its text mentions
        ("Hvad siger artikel 26 om løn til sygeplejersker?"): the provision is there, the answer is not."""
        topic = q.topic_tokens()
        if len(topic) < 2:
            return True  # "Hvad siger artikel 26?": the provision itself is the answer
        text: dict[str, list[str]] = {}
        for hit in named:
            p = hit.passage
            for sibling in self._unit_passages(p.locator.split(".")[0]):
                if sibling.doc_id == p.doc_id and sibling.language == p.language and sibling.version == p.version:
                    text.setdefault(p.language, []).append(sibling.indexed_text)
        if q.source_language not in text:
            return True  # only another language's text to compare the question's words with: no grounds to decline
        return q.coverage("\n".join(text[q.source_language]), q.source_language, self.idf, topic) > 0

    def gather_evidence(
        self, question: str, language: str, profile: list[str], top_k: int = 8, as_of: date | None = None
    ) -> tuple[list[SearchHit], Any]:
        """The evidence for a question and the signals the decision to answer or decline looks at."""
        from kb.abstention import signals

        hits, ranked = self.retriever._retrieve(question, language, profile, k=top_k, as_of=as_of)
        top = ranked[0] if ranked else None
        with stage("abstention"):
            evidence_signals = signals(
                question,
                [(h.passage.indexed_text, h.passage.language) for h in hits[:3]],
                dense_scores=self._dense_scores(hits),
                keyword_scores=[h.keyword_score for h in hits if h.keyword_score is not None],
                idf=self.idf,
                ranker_top=top.score if top else 0.0,
                unknown_words=self.keywords.unknown_share(Question.parse(question, language).own_tokens),
                retrievers_agree=(top.features.get("unit_bm25_rr", 0.0) + top.features.get("unit_dense_rr", 0.0)) if top else 0.0,
            )
        return hits, evidence_signals

    def scenario_for(self, question: str, scenario: str | None, language: str) -> ScenarioInfo:
        """The scenario the user chose, or the one inferred from the question with its confidence and cues."""
        from kb.scenarios import scenario_label

        if scenario is not None:
            if scenario not in SCENARIO_IDS:
                raise InvalidFilterError("scenario", scenario, list(SCENARIO_IDS))
            reason = "valgt af brugeren" if language == "da" else "chosen by the user"
            return ScenarioInfo(id=scenario, label=scenario_label(scenario, language), confidence=1.0, inferred=False, reason=reason)
        from kb.routing import NO_SCENARIO_LABEL

        guess = self.router.predict(question, language)
        return ScenarioInfo(
            id=guess.scenario,  # None: no clear scenario
            label=scenario_label(guess.scenario, language) if guess.scenario else NO_SCENARIO_LABEL.get(language, NO_SCENARIO_LABEL["en"]),
            confidence=round(float(guess.confidence), 3),
            inferred=True,
            reason=guess.reason,
        )

    @property
    def abstention_model_path(self) -> Path:
        """The abstention model calibrated for this knowledge base (data dir), else the one shipped for the full corpus."""
        from kb.abstention import MODEL_FILE

        own = self.settings.data_dir / "abstention.json"
        return own if own.exists() else MODEL_FILE

    @cached_property
    def generator(self) -> Any:
        """The optional LLM answerer of `settings.llm` (KB_LLM_URL where the settings were made), or None: extractive only."""
        from kb.generator import GeneratedAnswerer

        return GeneratedAnswerer.from_settings(self.settings.llm)

    @cached_property
    def router(self) -> Any:
        from kb.routing import ScenarioRouter

        # the index's embedder, through the query-vector cache: a question is embedded once for search and routing
        return ScenarioRouter(embed_query=self.embed_query, model_name=self.embedder.model_name)


MAX_QUESTION_CHARS = 2000


def _one_per_unit(found: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    """The first `k` (passage id, score) pairs of distinct articles or sections (`doc:unit`), in the order given."""
    chosen: list[tuple[str, float]] = []
    seen: set[str] = set()
    for pid, score in found:
        unit = pid.partition("/")[0].split(".")[0]
        if unit not in seen:
            seen.add(unit)
            chosen.append((pid, score))
            if len(chosen) == k:
                break
    return chosen


PENDING_MARK = "+"  # in the index stamp: passages still wait for their vectors
KEYWORD_INDEX_FORMAT = "2"  # a change here rebuilds every keyword index (2: with the learnt lexicon)


def check_question(question: str) -> str:
    """The question stripped; InvalidQuestionError when it is empty or too long, UnencodableTextError when not UTF-8."""
    text = check_text((question or "").strip(), "question")
    if not text:
        raise InvalidQuestionError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return text


def check_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise InvalidFilterError("language", language, list(LANGUAGES))
    return language
