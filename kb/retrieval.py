"""Retrieval: passages fused by reciprocal rank, then the law's units ranked by a learned model.

`Retriever` is the pipeline; `KnowledgeBase` holds the parts it reads (the
store, the keyword and unit indexes, the caches) and is the facade the CLI,
the service and the evaluation call.

Reciprocal rank fusion (Cormack et al. 2009) adds 1/(k + rank) over the
lists a passage appears in. We fuse by passage id rather than with
llama-index's `QueryFusionRetriever`, which keys nodes by content hash and so
cannot match the same passage coming from two different stores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from pydantic import BaseModel

from kb.errors import NotBuiltError
from kb.match import Match
from kb.passage import Passage
from kb.question import Question
from kb.ranker import FEATURES, RankerModel, log1p, reciprocal
from kb.references import covers
from kb.scenarios import in_profile
from kb.timing import stage
from kb.unit_index import UnitIndex, unit_of

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase


class _Covered(NamedTuple):
    """The passages a profile covers: a mask over the keyword rows, and the rows with a stored vector with it."""

    rows: np.ndarray  # float32, 1.0 where covered
    indices: np.ndarray  # keyword row numbers of the covered passages with a stored vector
    vectors: np.ndarray  # their vectors, one row each


class SearchHit(BaseModel):
    """A passage found for a query, with its fused score and where each retriever ranked it."""

    passage: Passage
    score: float
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None
    keyword_score: float | None = None
    named: bool = False

    def summary(self) -> dict[str, Any]:
        """The DESIGN shape of a search result."""
        p = self.passage
        return {
            "ref": p.ref,
            "passage_id": p.passage_id,
            "doc_id": p.doc_id,
            "title": p.title,
            "heading": p.heading,
            "language": p.language,
            "version": p.version,
            "score": round(self.score, 6),
            "text": p.text,
            # law-in-force: only for amended provisions, so other results keep DESIGN's shape
            **({"amended_by": p.amended_by, "version_note": p.version_note} if p.amended_by else {}),
        }


@dataclass
class Fused:
    """A passage id with its fused score and its rank in each list (None where absent)."""

    passage_id: str
    score: float
    ranks: dict[str, int | None] = field(default_factory=dict)


def reciprocal_rank_fusion(
    ranked: dict[str, Sequence[str]], k: int = 60, weights: dict[str, float] | None = None
) -> list[Fused]:
    """Fuse ranked id lists (name -> ids, best first) into one list, best first."""
    weights = weights or {}
    fused: dict[str, Fused] = {}
    for name, ids in ranked.items():
        weight = weights.get(name, 1.0)
        for rank, passage_id in enumerate(ids, start=1):
            entry = fused.setdefault(passage_id, Fused(passage_id, 0.0, {n: None for n in ranked}))
            if entry.ranks[name] is None:
                entry.ranks[name] = rank
                entry.score += weight / (k + rank)
    return sorted(fused.values(), key=lambda f: (-f.score, f.passage_id))


# --- ranking the law's units ------------------------------------------------------------------------------


@dataclass
class RankedUnit:
    """A unit (article, §, annex, clause, recital) with the ranker's score and the signals it was scored on."""

    ref: str
    doc_id: str
    score: float
    named: bool = False
    features: dict[str, float] = field(default_factory=dict)


CANDIDATES_PER_LIST = 30
TOP_UNIT_PASSAGES = 3  # passages of the best unit in the evidence (tuning split: 1 -> 0.61, 2 -> 0.70, 3 -> 0.71 recall@5)
# within a unit, a passage's score: similarity to the question, share of its words, the passage search's rank
PASSAGE_WEIGHTS = (1.0, 0.02, 0.01)


def _ranks(scores: np.ndarray, n: int) -> dict[int, int]:
    """Unit position -> rank (0 = best) of the best `n` units with a finite, positive-or-dense score."""
    finite = np.flatnonzero(np.isfinite(scores))
    if not len(finite):
        return {}
    top = finite[np.argsort(-scores[finite], kind="stable")[:n]]
    return {int(u): r for r, u in enumerate(top)}


def unit_candidates(
    question: Question,
    vector: np.ndarray,
    units: UnitIndex,
    translated_tokens: list[str],
    hits: Sequence[Any],
    keep: np.ndarray,
    profile: list[str],
    named_units: set[str],
    definition_units: set[str],
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[list[str], np.ndarray]:
    """The candidate units for a question and their feature matrix (rows in FEATURES order).

    Candidates are the best units of each list (unit BM25, unit dense, translated unit BM25) and the units of the
    passage-level hits; `exclude` leaves units out (a generated training question's own source)."""
    from kb.scenarios import in_profile
    from kb.unit_index import unit_kind

    bm25_rows = units.keyword_scores(list(question.tokens), keep)
    bm25 = units.per_unit(np.where(bm25_rows > 0, bm25_rows, -np.inf), keep)
    dense = units.per_unit(units.dense_scores(vector), keep & units.has_vector)
    target = "en" if question.source_language == "da" else "da"
    translated_rows = units.keyword_scores(translated_tokens, keep & units.mask(False, target)) if translated_tokens else np.zeros(len(units.rows))
    translated = units.per_unit(np.where(translated_rows > 0, translated_rows, -np.inf), keep)

    n = CANDIDATES_PER_LIST
    bm25_rank, dense_rank, translated_rank = _ranks(bm25, n), _ranks(dense, n), _ranks(translated, n)
    passage_best: dict[int, dict[str, int | None]] = {}
    passage_count: dict[int, int] = {}
    for rank, hit in enumerate(hits):
        u = units.unit_position.get(unit_of(hit.passage.ref))
        if u is None:
            continue
        best = passage_best.setdefault(u, {"fused": None, "dense": None, "keyword": None})
        passage_count[u] = passage_count.get(u, 0) + 1
        for name, value in (("fused", rank), ("dense", hit.dense_rank), ("keyword", hit.keyword_rank)):
            if value is not None and (best[name] is None or value < best[name]):
                best[name] = value
    keyword = np.maximum(bm25, translated)
    unit_doc = units.unit_doc_array
    named_acts = []  # the best units of each act the question names, found within that act
    for act in question.acts:
        inside = unit_doc == act
        if inside.any():
            for scores in (dense, keyword):
                named_acts += list(_ranks(np.where(inside, scores, -np.inf), 10))
    chosen = [
        u
        for u in dict.fromkeys([*bm25_rank, *dense_rank, *translated_rank, *passage_best, *named_acts])
        if units.unit_refs[u] not in exclude
    ]
    chosen += [units.unit_position[r] for r in named_units if r in units.unit_position and units.unit_position[r] not in chosen]
    if not chosen:
        return [], np.zeros((0, len(FEATURES)))

    doc_sim = units.doc_scores(vector)
    docs_by_sim = sorted(doc_sim, key=lambda d: -doc_sim[d])
    doc_rank = {d: i for i, d in enumerate(docs_by_sim)}
    best_doc = doc_sim[docs_by_sim[0]] if docs_by_sim else 0.0
    bm25_max = max((bm25[u] for u in bm25_rank), default=0.0) or 1.0
    dense_max = max((dense[u] for u in dense_rank), default=0.0)
    mass: dict[str, float] = {}
    for u in bm25_rank:
        mass[units.unit_doc[u]] = mass.get(units.unit_doc[u], 0.0) + float(bm25[u])
    total_mass = sum(mass.values()) or 1.0
    languages = units.languages_of_unit()

    rows = []
    for u in chosen:
        ref, doc_id = units.unit_refs[u], units.unit_doc[u]
        kind = unit_kind(ref)
        best = passage_best.get(u, {"fused": None, "dense": None, "keyword": None})
        values = {
            "unit_bm25": float(bm25[u]) / bm25_max if np.isfinite(bm25[u]) else 0.0,
            "unit_bm25_rr": reciprocal(bm25_rank.get(u)),
            "unit_dense": (float(dense[u]) - dense_max) * 10 if np.isfinite(dense[u]) else -3.0,
            "unit_dense_rr": reciprocal(dense_rank.get(u)),
            "translated_rr": reciprocal(translated_rank.get(u)),
            "passage_fused_rr": reciprocal(best["fused"]),
            "passage_dense_rr": reciprocal(best["dense"]),
            "passage_keyword_rr": reciprocal(best["keyword"]),
            "passage_hits": log1p(passage_count.get(u, 0)),
            "doc_dense": (doc_sim.get(doc_id, best_doc) - best_doc) * 10,
            "doc_rr": reciprocal(doc_rank.get(doc_id)),
            "doc_keyword": mass.get(doc_id, 0.0) / total_mass,
            "kind_recital": float(kind == "recital"),
            "kind_annex": float(kind == "annex"),
            "kind_front": float(kind == "front"),
            "kind_page": float(kind == "page"),
            "why_recital": float(kind == "recital" and question.wants_reasons),
            "named": float(ref in named_units),
            "act_named": float(doc_id in question.acts),
            "other_act_named": float(bool(question.acts) and doc_id not in question.acts),
            "definition": float(ref in definition_units),
            "in_degree": log1p(units.in_degree.get(ref, 0)),
            "in_profile": float(in_profile(profile, ref) or any(e.startswith(ref + ".") for e in profile)),
            "language_match": float(question.language in languages.get(u, ())),
        }
        same_act = unit_doc == doc_id
        values["within_act_dense_rr"] = (
            reciprocal(int(np.sum(dense[same_act] > dense[u]))) if np.isfinite(dense[u]) else 0.0
        )
        values["within_act_keyword_rr"] = (
            reciprocal(int(np.sum(keyword[same_act] > keyword[u]))) if np.isfinite(keyword[u]) else 0.0
        )
        rows.append([values[name] for name in FEATURES])
    return [units.unit_refs[u] for u in chosen], np.asarray(rows, dtype=np.float64)


def rank_units(
    refs: list[str], x: np.ndarray, model: RankerModel | None, named_units: set[str]
) -> list[RankedUnit]:
    """Units best first: the provisions the question names, then by the ranker's probability (or, before a ranker
    is trained, by the best rank any retriever gave them)."""
    if model is not None:
        scores = model.scores(x)
    else:  # untrained: reciprocal ranks summed, the fusion a ranker replaces
        columns = [FEATURES.index(n) for n in ("unit_bm25_rr", "unit_dense_rr", "translated_rr", "passage_fused_rr")]
        scores = x[:, columns].sum(axis=1) if len(x) else np.zeros(0)
    out = [
        RankedUnit(ref, ref.partition(":")[0], float(s), ref in named_units, dict(zip(FEATURES, row.tolist(), strict=True)))
        for ref, s, row in zip(refs, scores, x, strict=True)
    ]
    out.sort(key=lambda r: (not r.named, -r.score, r.ref))
    return out


class Retriever:
    """Search and evidence over one knowledge base: passage-level hybrid search, named provisions, the unit ranking,
    the passages of the best units, versions and languages. Reads the knowledge base's parts, never writes them."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

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
        """Hybrid search: dense and BM25 candidates fused by reciprocal rank, named provisions first; best first.

        `mode` "dense" or "keyword" uses one retriever alone (the baselines the evaluation compares with).
        `within` (a scenario's profile, `scenario_profile`) searches only the passages its entries cover: filtering
        the best candidates of the whole corpus afterwards would leave a handful, or none.
        """
        if not self.kb.is_built():
            raise NotBuiltError(str(self.kb.settings.data_dir))
        self.kb.check_filters(doc, kind, language)
        n = max(self.kb.settings.candidates, k)
        if mode not in ("hybrid", "dense", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        covered = self._covered(tuple(within)) if within is not None else None
        if covered is not None and not covered.rows.any():
            return []
        with stage("dense"):
            dense = self._dense(query, n, doc, kind, language, in_force_only, covered) if mode != "keyword" else []
        with stage("bm25"):
            mask = self._mask(doc, kind, language, in_force_only, covered)
            keyword = self.kb.keywords.search(query, n, mask) if mode != "dense" else []
            lists = {"dense": [pid for pid, _ in dense], "keyword": [pid for pid, _ in keyword]}
            if mode == "hybrid":
                lists["translated"] = self._translated_keywords(query, n, doc, kind, language, in_force_only, covered)
        with stage("fusion"):
            fused = reciprocal_rank_fusion(
                lists,
                k=self.kb.settings.rrf_k,
                weights={"dense": self.kb.settings.dense_weight, "translated": self.kb.settings.translated_weight},
            )[: max(k, 20)]
        similarity = dict(dense)
        bm25 = dict(keyword)
        with stage("fetch"):
            known = self.kb.reader.passages_by_id([f.passage_id for f in fused])
        hits = [
            SearchHit(
                passage=known[f.passage_id],
                score=f.score,
                dense_rank=f.ranks["dense"],
                keyword_rank=f.ranks["keyword"],
                dense_score=similarity.get(f.passage_id),
                keyword_score=bm25.get(f.passage_id),
            )
            for f in fused
            if f.passage_id in known
        ]
        if named:
            with stage("provisions"):
                hits = self._definitions_first(query, hits)
                hits = self._named_first(query, hits, doc=doc, kind=kind, language=language, in_force_only=in_force_only)
            if within is not None:  # a named provision outside the profile is not within it
                hits = [h for h in hits if in_profile(within, h.passage.ref)]
        return hits[:k]

    def _covered(self, entries: tuple[str, ...]) -> _Covered:
        """The passages profile entries cover, with their stored vectors; kept until the store changes (the keyword
        index's stamp), since a scenario's profile is searched again and again. A profile holds a few hundred
        passages: scoring them all here costs under a millisecond, where a Chroma query filtered to their
        references cost 60-100 ms."""
        return self._covered_cache(self.kb.index_version, entries)  # the whole stamp: vectors land text by text

    @cached_property
    def _covered_cache(self) -> Any:
        @lru_cache(maxsize=32)
        def covered(stamp: str, entries: tuple[str, ...]) -> _Covered:
            profile = list(entries)
            rows = self.kb.keywords.rows
            mask = np.array([in_profile(profile, r.passage_id.partition("/")[0]) for r in rows], dtype=np.float32)
            candidates = np.flatnonzero(mask)
            stored = self.kb.store.vectors([rows[i].passage_id for i in candidates])
            indices = np.array([i for i in candidates if rows[i].passage_id in stored], dtype=np.int64)
            vectors = np.stack([stored[rows[i].passage_id] for i in indices]) if len(indices) else np.zeros((0, 1))
            return _Covered(mask, indices, vectors.astype(np.float32))

        return covered

    def _mask(
        self, doc: str | None, kind: str | None, language: str | None, in_force_only: bool, covered: _Covered | None
    ) -> np.ndarray:
        """The keyword index's filter mask, narrowed to the covered passages when searching within a profile."""
        mask = self.kb.keywords.mask(doc, kind, language, in_force_only)
        return mask * covered.rows if covered is not None else mask

    def _definitions_first(self, query: str, hits: list[SearchHit]) -> list[SearchHit]:
        """For "what is a deployer?", the definition of that term among the candidates comes first."""
        from kb.keywords import tokenize, tokenize_query
        from kb.provisions import asks_for_definition, defined_term

        if not asks_for_definition(query):
            return hits
        words = set(tokenize_query(query))
        matching = []
        for hit in hits:
            term = defined_term(hit.passage.text)
            if term and set(tokenize(term, hit.passage.language)) <= words:
                matching.append(hit)
        if not matching:
            return hits
        top = hits[0].score
        for i, hit in enumerate(matching):
            hit.score = top + 0.5 / (i + 1)
        return matching + [h for h in hits if h not in matching]

    def _translated_keywords(
        self,
        query: str,
        n: int,
        doc: str | None,
        kind: str | None,
        language: str | None,
        in_force_only: bool,
        covered: _Covered | None = None,
    ) -> list[str]:
        """BM25 over the other language's passages with the question translated by the learnt lexicon:
        a Danish question's way into English-only texts (MDR, EHDS), an English one's into the Danish acts."""
        from kb.language import detect_language

        source = detect_language(query)
        target = "en" if source == "da" else "da"
        if language not in (None, target):
            return []
        tokens = self.kb.keywords.translated_tokens(query, source)
        if not tokens:
            return []
        mask = self._mask(doc, kind, target, in_force_only, covered)
        return [pid for pid, _ in self.kb.keywords.search(query, n, mask, tokens=tokens)]

    def _dense(
        self,
        query: str,
        n: int,
        doc: str | None,
        kind: str | None,
        language: str | None,
        in_force_only: bool,
        covered: _Covered | None = None,
    ) -> list[tuple[str, float]]:
        """Dense candidates (id, similarity). Filters are applied from the keyword index's fields after an
        over-fetch, since a filtered Chroma query costs several times an unfiltered one; a narrow filter
        (doc, kind, language) that would starve the over-fetch goes to Chroma as a where clause. Within a profile
        every `covered` passage is scored exactly, from its stored vector."""
        vector = self.kb.embed_query(query)
        pending = self.kb._keyword_state.get("pending")
        if covered is None and not pending:
            exact = self._dense_exact(vector, n, doc, kind, language, in_force_only)
            if exact is not None:
                return exact
        if pending:  # a build is embedding: the passages still waiting hold placeholders, never dense hits
            return [hit for hit in self._dense_stored(vector, n, doc, kind, language, in_force_only, covered) if hit[0] not in pending]
        return self._dense_stored(vector, n, doc, kind, language, in_force_only, covered)

    def _dense_exact(
        self, vector: np.ndarray, n: int, doc: str | None, kind: str | None, language: str | None, in_force_only: bool
    ) -> list[tuple[str, float]] | None:
        """The `n` nearest passages by an exact search over every stored vector (kb/unit_index.py,
        `passage_scores`), filtered by the keyword index's fields; None when the unit index is not the one for
        this index stamp (then Chroma's HNSW index answers)."""
        units = self.kb.units
        if units.stamp != self.kb.index_version or not units.passage_ids:
            return None
        keywords = self.kb.keywords
        key = (units.stamp, keywords.stamp, len(units.passage_ids), len(keywords.rows))  # what the row map depends on
        cached = self.__dict__.get("_exact_rows")
        if cached is None or cached[0] != key:
            rows = np.array([keywords.row_of.get(pid, -1) for pid in units.passage_ids], dtype=np.int64)
            cached = self.__dict__["_exact_rows"] = (key, rows)
        rows = cached[1]
        keep = (rows >= 0) & (keywords.mask(doc, kind, language, in_force_only)[np.maximum(rows, 0)] > 0)
        scores = np.where(keep, units.passage_scores(vector), -np.inf)
        k = min(n, int(keep.sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        # float32 like Chroma's distances; the passage id breaks ties (equal texts in two versions)
        found = [(units.passage_ids[i], float(np.float32(scores[i]))) for i in top]
        return sorted(found, key=lambda hit: (-hit[1], hit[0]))

    def _dense_stored(
        self,
        vector: np.ndarray,
        n: int,
        doc: str | None,
        kind: str | None,
        language: str | None,
        in_force_only: bool,
        covered: _Covered | None,
    ) -> list[tuple[str, float]]:
        if covered is not None:
            keep = self.kb.keywords.mask(doc, kind, language, in_force_only)[covered.indices] > 0
            scores = covered.vectors[keep] @ vector if keep.any() else np.zeros(0, np.float32)
            rows = self.kb.keywords.rows
            found = [(rows[i].passage_id, float(score)) for i, score in zip(covered.indices[keep], scores, strict=True)]
            return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:n]
        if doc is None and kind is None and language is None:
            found = self.kb.store.query(vector, 2 * n)
            kept = [(pid, s) for pid, s in found if self.kb.keywords.passes(pid, None, None, None, in_force_only)]
            if len(kept) >= n or len(found) < 2 * n:
                return kept[:n]
        match = Match(doc_id=doc, kind=kind, language=language, in_force=True if in_force_only else None)
        return self.kb.store.query(vector, n, match)

    def _named_first(
        self, query: str, hits: list[SearchHit], doc: str | None, kind: str | None, language: str | None, in_force_only: bool
    ) -> list[SearchHit]:
        """Put the provisions the query names ("artikel 26", "§ 73", "Annex VIII rule 11") ahead of the rest."""
        from kb.language import detect_language
        from kb.provisions import named_provisions

        provisions = named_provisions(query)
        if not provisions:
            return hits
        preferred = language or detect_language(query)
        top = hits[0].score if hits else 1.0
        rank = {h.passage.passage_id: i for i, h in enumerate(hits)}
        front: list[SearchHit] = []
        for provision in provisions:
            found = self.provision_passages(
                provision, preferred, doc=doc, kind=kind, language=language, in_force_only=in_force_only, limit=30
            )
            # the named provision's passages that the search itself ranks best come first; at most three in front
            found.sort(key=lambda p: (rank.get(p.passage_id, len(hits)), p.order))
            for passage in found[:3]:
                if all(h.passage.passage_id != passage.passage_id for h in front):
                    front.append(SearchHit(passage=passage, score=top + 1.0 / (len(front) + 1), named=True))
        seen = {h.passage.passage_id for h in front}
        return front + [h for h in hits if h.passage.passage_id not in seen]

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
        unit = provision.locator.split(".")[0]
        doc_ids = [d for d in (provision.doc_ids or ()) if doc is None or d == doc] or ([doc] if doc else [])
        # Chroma intersects every condition's full match set, so a broad one (in_force: 9,583 rows) costs 40 ms;
        # the unit alone is selective: ask for it and filter the rest here
        found = self.kb.reader.unit_passages(unit)
        target = f"x:{provision.locator}"
        found = [
            p
            for p in found
            if covers(target, f"x:{p.locator}")
            and (not doc_ids or p.doc_id in doc_ids)
            and kind in (None, p.kind)
            and language in (None, p.language)
            and (p.in_force or not in_force_only)
        ]
        if provision.rule is not None:
            found = [p for p in found if re.match(rf"\s*(?:Rule|Regel)\s+{provision.rule}\b", p.text)]
        if not found:
            return []
        if not doc_ids:  # "artikel 26" with no act named: the act whose provision fits the language best
            by_doc: dict[str, list[Passage]] = {}
            for p in found:
                by_doc.setdefault(p.doc_id, []).append(p)
            ranked_docs = sorted(by_doc, key=lambda d: (all(p.language != preferred_language for p in by_doc[d]), d != "ai-act", d))
            found = by_doc[ranked_docs[0]]
        languages = {p.language for p in found}
        chosen = preferred_language if preferred_language in languages else sorted(languages)[0]
        return sorted((p for p in found if p.language == chosen), key=lambda p: p.order)[:limit]

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
        """Evidence for a question: the law's units ranked (kb.retrieval.rank_units), then the passages of the best
        units that answer it, swapped to the question's language where a parallel version exists, and the
        provisions the best passages cite brought within reach."""
        return self._retrieve(question, language, profile, k, doc, kind, as_of)[0]

    def _retrieve(
        self,
        question: str,
        language: str,
        profile: list[str],
        k: int = 8,
        doc: str | None = None,
        kind: str | None = None,
        as_of: date | None = None,
    ) -> tuple[list[SearchHit], list[RankedUnit]]:
        q = Question.parse(question, language)
        hits = self.search(question, k=40, doc=doc, kind=kind, in_force_only=as_of is None)
        if as_of is not None:
            hits = [h for h in hits if self._valid_on(h.passage, as_of)]
        with stage("units"):
            ranked = self.rank_units(q, hits, profile, doc=doc, kind=kind, as_of=as_of)
            chosen = self._unit_evidence(q, ranked, hits, k, as_of)
        with stage("provisions"):
            from kb.versions import with_application_dates  # law-in-force: "from when does it apply?" (Art. 113)

            chosen = with_application_dates(self.kb, question, chosen, as_of)
            chosen = self._in_language(chosen, language)[:k]
            return chosen + self._cited_by(chosen[:3], language, k=3, as_of=as_of), ranked

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
        """The units that may hold the answer, best first (the named ones first), with the ranker's scores."""
        from kb.keywords import tokenize
        from kb.provisions import defined_term
        from kb.ranker import load_ranker

        units = self.kb.units
        keep = units.mask(in_force_only=as_of is None)
        if doc is not None:
            keep &= units.doc_of_row == doc
        if kind is not None:
            kinds = {d for d, info in self.kb.catalog["documents"].items() if info["kind"] == kind}
            keep &= np.isin(units.doc_of_row, sorted(kinds))
        if as_of is not None:
            keep &= np.array([self._version_valid_on(r.doc_id, r.version, r.language, as_of, r.in_force) for r in units.rows], dtype=bool)
        named_units = {unit_of(h.passage.ref) for h in hits if h.named}
        definition_units: set[str] = set()
        if q.wants_definition:
            words = set(q.tokens)
            for h in hits:
                term = defined_term(h.passage.text)
                if term and set(tokenize(term, h.passage.language)) <= words:
                    definition_units.add(unit_of(h.passage.ref))
        translated = self.kb.keywords.translated_tokens(q.text, q.source_language)
        refs, x = unit_candidates(
            q, self.kb.embed_query(q.text), units, translated, hits, keep, profile, named_units, definition_units, exclude
        )
        # `trained=False` orders by the retrievers' ranks alone: what eval.train_ranker asks for (the features)
        return rank_units(refs, x, load_ranker(self.kb.ranker_model_path) if trained else None, named_units)

    def _unit_evidence(
        self, q: Question, ranked: list[RankedUnit], hits: list[SearchHit], k: int, as_of: date | None
    ) -> list[SearchHit]:
        """The passages of the best units that answer the question: three of the best unit, then one of each next unit
        (the composer quotes a unit's other passages itself). Within a unit, the passages of a provision the question
        names come first; the rest are scored by `_passage_scores`."""
        found_rank: dict[str, int] = {}
        found_hit: dict[str, SearchHit] = {}
        named: dict[str, list[SearchHit]] = {}
        for rank, hit in enumerate(hits):
            found_rank.setdefault(hit.passage.passage_id, rank)
            found_hit.setdefault(hit.passage.passage_id, hit)
            if hit.named:
                named.setdefault(unit_of(hit.passage.ref), []).append(hit)
        units = self.kb.units
        vector = self.kb.embed_query(q.text)
        out: list[SearchHit] = []
        for position, unit in enumerate(ranked):
            if len(out) >= k:
                break
            take = TOP_UNIT_PASSAGES if position == 0 else 1
            chosen = list(named.get(unit.ref, [])) if unit.named else []
            if len(chosen) < take:
                rows = [
                    r
                    for r in (units.rows[i] for i in units.rows_of_unit.get(unit.ref, []))
                    if (r.in_force if as_of is None else self._version_valid_on(r.doc_id, r.version, r.language, as_of, r.in_force))
                ]
                rows.sort(key=lambda r: r.language != q.language)
                have = {h.passage.passage_id for h in chosen}
                ids = [pid for pid in (rows[0].passage_ids if rows else []) if pid not in have]
                passages = list(self.kb.reader.passages_by_id(ids).values())
                scores = self._passage_scores(q, vector, passages, found_rank)
                best = sorted(zip(scores, passages, strict=True), key=lambda sp: (-sp[0], sp[1].order))
                # a passage the search found keeps its retrievers' ranks and scores (the abstention model reads them)
                chosen += [found_hit.get(p.passage_id) or SearchHit(passage=p, score=0.0) for _, p in best[: take - len(chosen)]]
            for hit in chosen[:take]:
                out.append(hit.model_copy(update={"score": unit.score + (1.0 if unit.named else 0.0)}))
        return out

    def _passage_scores(
        self, q: Question, vector: np.ndarray, passages: list[Passage], found_rank: dict[str, int]
    ) -> list[float]:
        """How well each passage of one unit answers the question: its similarity to the question (stored vector),
        the share of the question's words it holds, and where the passage search put it. Weights chosen on the
        tuning split (PASSAGE_WEIGHTS)."""
        if not passages:
            return []
        stored = self._vectors([p.passage_id for p in passages])
        dense_w, words_w, found_w = PASSAGE_WEIGHTS
        out = []
        for p in passages:
            v = stored.get(p.passage_id)
            similarity = float(v @ vector) if v is not None else 0.0
            rank = found_rank.get(p.passage_id)
            out.append(
                dense_w * similarity
                + words_w * q.coverage(p.indexed_text, p.language, self.kb.idf)
                + (found_w / (1 + rank) if rank is not None else 0.0)
            )
        return out

    def _vectors(self, passage_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored passage vectors, cached until the store or its vectors change (the index stamp: a build lands
        vectors text by text)."""
        cache = self.__dict__.setdefault("_vector_cache", {})
        if cache.get("\x00stamp") != self.kb.index_version or len(cache) > 50_000:
            cache.clear()
            cache["\x00stamp"] = self.kb.index_version
        missing = [pid for pid in passage_ids if pid not in cache]
        if missing:
            cache.update(self.kb.store.vectors(missing))
        return {pid: cache[pid] for pid in passage_ids if pid in cache}

    def _version_valid_on(
        self, doc_id: str, version: str, language: str, as_of: date, in_force: bool | None = None
    ) -> bool:
        """law-in-force: the version that applied on `as_of`, per provision and across languages (kb/versions.py)."""
        from kb.versions import version_valid_on

        return version_valid_on(self.kb.catalog, doc_id, version, language, as_of, in_force)

    def _valid_on(self, passage: Passage, as_of: date) -> bool:
        """True when the passage applied on `as_of` (latest valid_from not after it; settled per provision after)."""
        return self._version_valid_on(passage.doc_id, passage.version, passage.language, as_of, passage.in_force)

    def _in_language(self, hits: list[SearchHit], language: str) -> list[SearchHit]:
        """Replace each hit by its parallel version in `language` where one exists; one hit per reference."""
        from kb.versions import stands_in_for

        foreign = [h.passage.ref for h in hits if h.passage.language != language]
        parallel: dict[str, list[Passage]] = {}
        if foreign:
            for p in self.kb.store.find(Match(ref=tuple(sorted(set(foreign))))):  # the language filtered here: cheaper
                if p.language == language:
                    parallel.setdefault(p.ref, []).append(p)
        out: list[SearchHit] = []
        seen: set[tuple[str, str, int]] = set()
        for hit in hits:
            p = hit.passage
            # law-in-force: the same version, or the provision's text in force when the newest version is in another
            # language and did not change it (kb/versions.py)
            swap = stands_in_for(p, parallel.get(p.ref, [])) if p.language != language else None
            if swap is not None:
                hit = hit.model_copy(update={"passage": swap})
            key = (hit.passage.ref, hit.passage.version, hit.passage.piece)
            if key not in seen:
                seen.add(key)
                out.append(hit)
        return out

    def _cited_by(self, hits: list[SearchHit], language: str, k: int, as_of: date | None) -> list[SearchHit]:
        """The first passage of each provision the best hits cite (Article 26 -> Article 6(2), Annex III)."""
        from kb.provisions import NamedProvision

        have = {h.passage.ref for h in hits}
        out: list[SearchHit] = []
        floor = min((h.score for h in hits), default=0.0)
        for hit in hits:
            for ref in hit.passage.cites:
                if len(out) >= k or ref in have:
                    continue
                doc_id, _, locator = ref.partition(":")
                found = self.provision_passages(
                    NamedProvision(locator, (doc_id,)), language, in_force_only=as_of is None, limit=1
                )
                for passage in found:
                    if passage.ref not in have:
                        have.add(passage.ref)
                        out.append(SearchHit(passage=passage, score=floor * 0.9))
        return out

