"""The law's units as retrieval targets: one row per article, §, annex, clause or recital in one text.

Why units: a question about terminating an innovation partnership is answered by
`udbudsloven:§-78`, not by whichever paragraph of the AI Act shares most words with
it. Passages are short (one stk., one point); a unit's heading and all its
passages together say what the provision is about. So each unit (its reference up
to the first '.', DESIGN "A unit is …") gets a BM25 document (heading + every passage
of it in one language and version) and a vector (the mean of its passages' stored
vectors), and each document a centroid, from which the ranker learns which act a
question is about. Built from the store's passages and vectors whenever the keyword
index is rebuilt (same stamp), and saved beside it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb.folders import written_whole
from kb.keywords import tokenize
from kb.passage import Passage

FORMAT = "2"  # 2: the passage vectors for exact dense search

_WHY = re.compile(r"\b(?:why|purpose|reason|rationale|hvorfor|formål(?:et)?|begrundelse(?:n)?)\b", re.IGNORECASE)


def unit_of(ref: str) -> str:
    """`ai-act:art-26.1` -> `ai-act:art-26`: the reference up to the first '.'."""
    doc_id, _, locator = ref.partition(":")
    return f"{doc_id}:{locator.split('.')[0]}"


def unit_kind(ref: str) -> str:
    """What sort of unit a reference is: article, recital, annex, front (introductions, cover pages), page."""
    locator = ref.partition(":")[2].split(".")[0]
    if locator.startswith("recital-"):
        return "recital"
    if locator.startswith("annex-"):
        return "annex"
    if locator in ("section-0", "preamble", "front"):
        return "front"
    if locator.startswith("page-"):
        return "page"
    return "article"


def asks_why(question: str) -> bool:
    """'Why does …', 'Hvad er formålet med …': the question may be answered by a recital."""
    return _WHY.search(question) is not None


@dataclass
class UnitRow:
    """One unit in one text (language and version): its reference, where it is, and its passages."""

    ref: str  # the unit reference, e.g. "ai-act:art-26"
    doc_id: str
    language: str
    version: str
    in_force: bool
    heading: str
    passage_ids: list[str] = field(default_factory=list)


@dataclass
class UnitIndex:
    """BM25 over unit texts, unit vectors, document centroids and how often each unit is cited."""

    stamp: str
    rows: list[UnitRow]
    bm25: object
    vectors: np.ndarray  # one normalised row per unit row (zeros where no passage has a vector yet)
    doc_ids: list[str]
    doc_vectors: np.ndarray  # one normalised centroid per document (in-force units)
    in_degree: dict[str, int]  # unit ref -> number of other units citing it
    passage_ids: list[str] = field(default_factory=list)  # every passage with a vector, in `passage_vectors` order
    passage_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.float32))
    _row_of_passage: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._row_of_passage = {pid: i for i, row in enumerate(self.rows) for pid in row.passage_ids}
        self._in_force = np.array([r.in_force for r in self.rows], dtype=bool)
        self._languages = np.array([r.language for r in self.rows], dtype=object)
        self.doc_of_row = np.array([r.doc_id for r in self.rows], dtype=object)
        # the unit references (across languages and versions) and which one each row is
        self.unit_refs: list[str] = sorted({r.ref for r in self.rows})
        position = {ref: i for i, ref in enumerate(self.unit_refs)}
        self.row_unit = np.array([position[r.ref] for r in self.rows], dtype=np.int64)
        self.unit_doc = [ref.partition(":")[0] for ref in self.unit_refs]
        self.unit_doc_array = np.array(self.unit_doc, dtype=object)
        self.unit_position = position
        self.has_vector = self.vectors.any(axis=1) if len(self.rows) else np.zeros(0, dtype=bool)
        self.rows_of_unit: dict[str, list[int]] = {}
        for i, row in enumerate(self.rows):
            self.rows_of_unit.setdefault(row.ref, []).append(i)

    def languages_of_unit(self) -> dict[int, set[str]]:
        """Unit position -> the languages it has an in-force text in."""
        cached = self.__dict__.get("_unit_languages")
        if cached is None:
            cached = {}
            for i, row in enumerate(self.rows):
                if row.in_force:
                    cached.setdefault(int(self.row_unit[i]), set()).add(row.language)
            self.__dict__["_unit_languages"] = cached
        return cached

    def per_unit(self, row_scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The best score of each unit over its kept rows (-inf where no row is kept)."""
        out = np.full(len(self.unit_refs), -np.inf, dtype=np.float64)
        if len(self.rows):
            masked = np.where(keep, row_scores, -np.inf)
            np.maximum.at(out, self.row_unit, masked)
        return out

    def row_of_passage(self, passage_id: str) -> int | None:
        return self._row_of_passage.get(passage_id)

    def mask(self, in_force_only: bool = True, language: str | None = None) -> np.ndarray:
        keep = self._in_force.copy() if in_force_only else np.ones(len(self.rows), dtype=bool)
        if language is not None:
            keep &= self._languages == language
        return keep

    def keyword_scores(self, tokens: list[str], keep: np.ndarray) -> np.ndarray:
        """BM25 score of every unit row for stemmed `tokens` (0 where masked out or no token is known)."""
        vocab = self.bm25.vocab_dict  # type: ignore[attr-defined]
        known = [t for t in tokens if t in vocab]
        if not known or not self.rows:
            return np.zeros(len(self.rows), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32) * keep  # type: ignore[attr-defined]

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        """Similarity of the question to every unit row (0 where the row has no vector yet)."""
        if not len(self.rows) or self.vectors.shape[1] != len(vector):  # no vector at all yet: a build's first pass
            return np.zeros(len(self.rows), dtype=np.float32)
        return self.vectors @ vector

    def doc_scores(self, vector: np.ndarray) -> dict[str, float]:
        """Cosine similarity of the question to each document's centroid: the act prior's dense half."""
        if not self.doc_ids or self.doc_vectors.shape[1] != len(vector):
            return {}
        return dict(zip(self.doc_ids, (self.doc_vectors @ vector).tolist(), strict=True))

    def passage_scores(self, vector: np.ndarray) -> np.ndarray:
        """Similarity of the question to every stored passage vector (`passage_ids` order): exact dense search.

        Chroma's HNSW graph is approximate, and a build's first pass inserts placeholder vectors that its graph
        keeps routing around: two builds of the same texts gave different nearest passages (and so a different
        abstention model), and the Chroma server and the embedded store different answers. A matrix product over
        all passages costs a few milliseconds for the whole corpus and is the same everywhere."""
        if not self.passage_ids or self.passage_vectors.shape[1] != len(vector):
            return np.zeros(len(self.passage_ids), dtype=np.float32)
        return self.passage_vectors @ vector

    # --- building and persistence ------------------------------------------------------------------

    @classmethod
    def build(
        cls, passages: list[Passage], vectors: dict[str, np.ndarray], stamp: str, exact_dense_max: int = 250_000
    ) -> UnitIndex:
        """Units from every stored passage and its vector (passages without one count in BM25 only); the passage
        vectors themselves are kept for exact dense search up to `exact_dense_max` passages."""
        import bm25s

        by_key: dict[tuple[str, str, str], UnitRow] = {}
        texts: dict[tuple[str, str, str], list[str]] = {}
        cites: dict[str, set[str]] = {}
        for p in sorted(passages, key=lambda p: (p.text_key, p.order)):
            unit = unit_of(p.ref)
            key = (unit, p.language, p.version)
            row = by_key.get(key)
            if row is None:
                row = by_key[key] = UnitRow(unit, p.doc_id, p.language, p.version, p.in_force, p.heading)
                texts[key] = [p.heading]
            row.passage_ids.append(p.passage_id)
            row.in_force = row.in_force or p.in_force
            texts[key].append(p.text)
            for cited in p.cites:
                target = unit_of(cited)
                if target != unit:
                    cites.setdefault(target, set()).add(unit)
        rows = list(by_key.values())
        dim = len(next(iter(vectors.values()))) if vectors else 1
        matrix = np.zeros((len(rows), dim), dtype=np.float32)
        for i, row in enumerate(rows):
            found = [vectors[pid] for pid in row.passage_ids if pid in vectors]
            if found:
                mean = np.mean(np.stack(found), axis=0)
                matrix[i] = mean / (np.linalg.norm(mean) or 1.0)
        doc_ids = sorted({r.doc_id for r in rows})
        doc_vectors = np.zeros((len(doc_ids), dim), dtype=np.float32)
        for j, doc_id in enumerate(doc_ids):
            members = [i for i, r in enumerate(rows) if r.doc_id == doc_id and r.in_force and matrix[i].any()]
            if members:
                mean = matrix[members].mean(axis=0)
                doc_vectors[j] = mean / (np.linalg.norm(mean) or 1.0)
        bm25 = bm25s.BM25()
        tokens = [tokenize("\n".join(texts[(r.ref, r.language, r.version)]), r.language) or ["∅"] for r in rows]
        if tokens:
            bm25.index(tokens, show_progress=False)
        in_degree = {unit: len(citing) for unit, citing in cites.items()}
        stored = {p.passage_id for p in passages}
        passage_ids = sorted(pid for pid in vectors if pid in stored) if len(stored) <= exact_dense_max else []
        passage_vectors = (
            np.stack([vectors[pid] for pid in passage_ids]).astype(np.float32)
            if passage_ids
            else np.zeros((0, dim), dtype=np.float32)
        )
        return cls(stamp, rows, bm25, matrix, doc_ids, doc_vectors, in_degree, passage_ids, passage_vectors)

    def save(self, folder: Path) -> None:
        """Written to a temporary folder and renamed over `folder`: a reader never sees half an index."""
        meta = {
            "format": FORMAT,
            "stamp": self.stamp,
            "rows": [r.__dict__ for r in self.rows],
            "doc_ids": self.doc_ids,
            "in_degree": self.in_degree,
            "passage_ids": self.passage_ids,
        }
        with written_whole(folder) as tmp:
            self.bm25.save(str(tmp / "bm25"))  # type: ignore[attr-defined]
            np.save(tmp / "vectors.npy", self.vectors)
            np.save(tmp / "doc_vectors.npy", self.doc_vectors)
            np.save(tmp / "passage_vectors.npy", self.passage_vectors)
            (tmp / "units.json").write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path, stamp: str | None = None) -> UnitIndex | None:
        """The saved index (for `stamp`, when given), or None (none saved, an older format, or another stamp)."""
        import bm25s

        try:
            meta = json.loads((folder / "units.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if meta.get("format") != FORMAT or (stamp is not None and meta.get("stamp") != stamp):
            return None
        rows = [UnitRow(**r) for r in meta["rows"]]
        bm25 = bm25s.BM25.load(str(folder / "bm25")) if rows else bm25s.BM25()
        return cls(
            meta["stamp"],
            rows,
            bm25,
            np.load(folder / "vectors.npy"),
            meta["doc_ids"],
            np.load(folder / "doc_vectors.npy"),
            {k: int(v) for k, v in meta["in_degree"].items()},
            meta["passage_ids"],
            np.load(folder / "passage_vectors.npy"),
        )


def log_degree(n: int) -> float:
    return math.log1p(n)
