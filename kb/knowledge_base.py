"""The knowledge base object: one core that the CLI, the service and the evaluation call.

A facade over the parts that do the work, each in its own module: the store (kb/store.py), the keyword index and
its keeping in step with the store (kb/keywords.py, kb/indexing.py), retrieval (kb/retrieval.py), reading passages
and provisions (kb/reading.py) and answering (kb/asking.py). It holds what they share: the settings, the loaded
index state and the one-writer lock.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from kb.answer import Answer, ScenarioInfo
from kb.asking import Asker
from kb.errors import InvalidFilterError, NotBuiltError
from kb.indexing import PENDING_MARK, Indexer
from kb.keywords import KeywordIndex
from kb.passage import Passage
from kb.question import Question
from kb.reading import Reader
from kb.retrieval import RankedUnit, Retriever, SearchHit
from kb.scenarios import profile_refs
from kb.settings import Settings
from kb.store import PassageStore, open_client
from kb.timing import stage
from kb.unit_index import UnitIndex

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

    # --- keeping the keyword index in step with the store (kb/indexing.py): the facade -------

    @cached_property
    def indexer(self) -> Indexer:
        return Indexer(self)

    def store_fingerprint(self) -> str:
        """A hash of every passage id and content hash: changes whenever the store's contents do."""
        return self.indexer.store_fingerprint()

    def refresh_keyword_index(self) -> bool:
        """Rebuild the BM25 index and catalog when they do not match the store; True when rebuilt."""
        return self.indexer.refresh()

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

    # --- reading passages and provisions (kb/reading.py): the facade ---------------------

    @cached_property
    def reader(self) -> Reader:
        return Reader(self)

    def passage(self, passage_id: str) -> Passage:
        """The passage with this id (UnknownPassageError when there is none)."""
        return self.reader.passage(passage_id)

    def parallel_versions(self, passage: Passage) -> list[Passage]:
        """The same reference in the other languages (same version label where there is one)."""
        return self.reader.parallel_versions(passage)

    def neighbours(self, passage: Passage, before: int = 1, after: int = 1) -> list[Passage]:
        """The passages just before and after in the same text."""
        return self.reader.neighbours(passage, before, after)

    def passages_for_ref(self, ref: str, language: str | None = None, in_force_only: bool = True) -> list[Passage]:
        """Every passage whose reference is `ref` or below it, in document order."""
        return self.reader.passages_for_ref(ref, language, in_force_only)

    def cited_by(self, ref: str) -> list[str]:
        """References of the passages in force that cite `ref` or a reference below it."""
        return self.reader.cited_by(ref)

    def similar_in_other_documents(
        self, passages: list[Passage], k: int = 5, kinds: list[str] | None = None, language: str | None = None
    ) -> list[SearchHit]:
        """Provisions of other documents nearest in meaning to `passages`, one hit per article or section."""
        return self.reader.similar_in_other_documents(passages, k, kinds, language)

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
                cached = (stamp, saved if fits else self.indexer.build_units(stamp))
                self.__dict__["_units"] = cached
        return cached[1]

    @property
    def ranker_model_path(self) -> Path:
        """The unit ranker trained for this knowledge base (data dir), else the one shipped (kb/data/ranker.json)."""
        from kb.ranker import MODEL_FILE

        own = self.settings.data_dir / "ranker.json"
        return own if own.exists() else MODEL_FILE

    # --- answering (kb/asking.py): the facade --------------------------------------------

    @cached_property
    def asker(self) -> Asker:
        return Asker(self)

    def ask(
        self,
        question: str,
        scenario: str | None = None,
        language: str | None = None,
        top_k: int = 8,
        as_of: date | None = None,
    ) -> Answer:
        """A cited answer tied to a scenario, or a plain refusal with the nearest passages."""
        return self.asker.ask(question, scenario, language, top_k, as_of)

    def gather_evidence(
        self, question: str, language: str, profile: list[str], top_k: int = 8, as_of: date | None = None
    ) -> tuple[list[SearchHit], Any]:
        """The evidence for a question and the signals the decision to answer or decline looks at."""
        return self.asker.gather_evidence(question, language, profile, top_k, as_of)

    def scenario_for(self, question: str, scenario: str | None, language: str) -> ScenarioInfo:
        """The scenario the user chose, or the one inferred from the question with its confidence and cues."""
        return self.asker.scenario_for(question, scenario, language)

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




