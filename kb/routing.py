"""Scenario routing: which of the four procurement scenarios a question is asked from.

An answer is tied to a scenario (DESIGN.md); when the asker does not choose one,
the system infers it from the question and says how sure it is and why.

Method: multinomial logistic regression in numpy over two kinds of features,
fitted at construction on the train split of kb/data/scenario_questions.jsonl
plus the typical questions of kb/data/scenarios.yaml (a fraction of a second).
The train split also holds the 103 calibration questions that carry a scenario
(`"source": "eval/datasets/calibration.jsonl"`), written by someone else in
another voice: with them, accuracy on the dev set rose from 0.48 to 0.58 while
the held-out split stayed at 0.94. The dev set itself is never trained on.

- cue features: a hand-written lexicon of Danish and English cue words and
  phrases per scenario ('prototype', 'OPI', 'innovationspartnerskab', 'CE-mærket',
  'sandbox' ...), matched on word starts so Danish inflections and compounds hit.
  Their weights are fitted with an L2 pull towards a prior (+PRIOR for the
  scenario the cue is listed under), so a cue never seen in training still counts;
- word features: stemmed words of the question (kb.keywords.tokenize), binary
  times idf, L2-normalised, with a plain L2 penalty.

The scores are the class logits; the confidence is their softmax. The reason
names the cues that pushed the chosen scenario most, as written in the question;
when no cue decides, it names the nearest typical question of that scenario.
Everything is deterministic (fixed-step full-batch gradient descent, no sampling).
`python -m kb.routing` prints the held-out evaluation; `--cv` the cross-validation
on the train split used to choose the hyperparameters.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from kb.keywords import tokenize
from kb.language import detect_language
from kb.scenarios import SCENARIO_IDS, load_scenarios

QUESTIONS_FILE = Path(__file__).resolve().parent / "data" / "scenario_questions.jsonl"

# Hyperparameters, chosen by 5-fold cross-validation on the train split (`python -m kb.routing --cv`):
# a grid over PRIOR {0.75, 1.5, 3}, CUE_L2 {0.02, 0.05, 0.2}, WORD_L2 {0.003, 0.01, 0.03}, WORD_SCALE {1, 2, 4};
# accuracy is flat (0.87-0.90), this setting ties for best and has the lowest log-loss (0.35, mean
# confidence 0.88 against accuracy 0.90: the softmax is about calibrated).
PRIOR = 3.0  # prior weight of a cue for the scenario it is listed under
CUE_L2 = 0.05  # pull of cue weights towards their prior
WORD_L2 = 0.003  # L2 penalty of word weights
WORD_SCALE = 2.0  # length of the word-feature vector (the L2-normalised tf-idf part)
STEPS = 400
LEARNING_RATE = 0.5
MIN_CUE_CONTRIBUTION = 0.15  # a lexicon cue must add this much to the winning logit to be named

# --- the cue lexicon ---------------------------------------------------------------------------
# Each cue is a regex matched at a word start on the lower-cased question; `\w*` lets
# "innovationspartnerskab" match "innovationspartnerskabet". Cues may also count
# towards other scenarios: the fitted weights decide, the listing only sets the prior.
_W = r"[\w-]*"
CUES: dict[str, list[str]] = {
    "behov": [
        # Danish
        rf"markedsdialog{_W}", rf"markedsundersøgelse{_W}", rf"markedsafdækning{_W}", rf"markedskonsultation{_W}",
        rf"innovationspartnerskab{_W}", rf"konkurrencepræget{_W} dialog{_W}", rf"forudgående inddragelse{_W}",
        rf"inddrag{_W}", rf"behov{_W}", rf"funktionskrav{_W}", rf"kravspecifikation{_W}", rf"idé{_W}",
        r"ikke findes", r"findes ikke", r"ingen løsning", r"intet produkt", r"ingen leverandør", r"fra bunden",
        rf"forhåndsmeddelelse{_W}", rf"projektkonkurrence{_W}", rf"prækommerciel{_W}", rf"tekniske specifikation{_W}",
        rf"sundhedsinnovation{_W}", rf"dialogmøde{_W}", rf"workshop{_W}", rf"ligebehandling{_W}", rf"forspring{_W}",
        rf"udviklingsprojekt{_W}", rf"udbudsform{_W}", r"udbud med forhandling",
        # English
        r"market dialogue", r"market consultation", rf"innovation partnership{_W}", r"competitive dialogue",
        r"prior involvement", r"no vendor", r"no solution", r"no product", r"needs?\b", rf"functional requirement{_W}",
        r"specifications?\b", rf"idea{_W}", r"design contest", r"pre-commercial", r"from scratch",
        r"problem", r"equal treatment", r"negotiated procedure", r"draft(?:ed|ing)? our requirements",
        r"procurement route",
    ],
    "prototype": [
        rf"prototype{_W}", r"mvp", rf"opi{_W}", rf"offentlig-privat{_W}", rf"forskningsprojekt{_W}", rf"forskning{_W}",
        rf"forsker{_W}", rf"videnskabsetisk{_W}", rf"komit[eé]{_W}", rf"sundhedsdatavidenskabelig{_W}",
        rf"journal{_W}", rf"træningsdata{_W}", rf"træne{_W}", rf"pseudonymis{_W}", rf"anonymis{_W}",
        rf"dataansvar{_W}", rf"immaterielle rettighed{_W}", rf"ip-rettighed{_W}", rf"ejer{_W}", rf"publicere{_W}",
        r"proof of concept", rf"internt{_W}", r"in-house", r"artikel 89", rf"formålsbegrænsning{_W}",
        rf"registerdata{_W}", rf"samarbejd{_W}", rf"startup{_W}", rf"forskningsbevilling{_W}", r"pacs",
        rf"forsøgsansvarlig{_W}", rf"datasæt{_W}", r"eget hospital",
        r"public-private", rf"research{_W}", r"ethics committee", rf"committee{_W}",
        r"health data science", r"patient records", r"training data", r"train(?:ing|ed)?\b", rf"pseudonymi[sz]{_W}",
        rf"anonymi[sz]{_W}", rf"controller{_W}", r"intellectual property", r"ip\b", r"owns?\b",
        r"investigational device",
        rf"academic{_W}", rf"collaboration{_W}", r"article 89", r"co-developed", r"industry partner",
    ],
    "demo": [
        rf"pilot{_W}", r"første version", rf"beta{_W}", r"faktiske forhold", rf"sandkasse{_W}",
        rf"klinisk{_W} afprøvning{_W}", rf"klinisk{_W} evaluering{_W}", rf"klinisk{_W} evidens{_W}",
        rf"ydeevneundersøgelse{_W}", rf"lovende{_W}", rf"effekt{_W}", rf"retrospektiv{_W}", rf"skala{_W}",
        rf"afprøv{_W}", rf"test{_W}", rf"sponsor{_W}", rf"samtykke{_W}", r"bemyndiget organ", rf"dpia{_W}",
        rf"pmcf{_W}", rf"exitrapport{_W}", rf"risikostyring{_W}", rf"nøjagtighed{_W}", rf"robusthed{_W}",
        rf"markedsovervågning{_W}", rf"lægemiddelstyrelsen{_W}", rf"prospektiv{_W}", rf"ikke-ce-mærket{_W}",
        rf"videreudvikling{_W}", r"fase to", r"regel 11", r"demo\b",
        r"pilot", r"first version", r"beta\b", r"real[- ]world", rf"sandbox{_W}", r"clinical investigation",
        r"clinical evidence", r"performance study", r"promising", r"retrospective", r"scale up", r"test(?:ing|s)?\b",
        rf"consent{_W}", r"notified body", r"dpia", r"uncertified", r"post-market clinical follow-up",
        r"exit report", r"risk management", r"accuracy", r"robustness", r"market surveillance", r"test licen[cs]es",
        r"further development", r"second phase", r"class iia",
    ],
    "loesning": [
        rf"færdig{_W}", r"ce-mærke(?:t|de)\b", rf"ce-mærkning{_W}", rf"idriftsætter{_W}", rf"ibrugtagning{_W}",
        r"i brug", r"fria", r"grundlæggende rettigheder", rf"gennemsigtighed{_W}", rf"chatbot{_W}",
        rf"databehandleraftale{_W}", rf"underdatabehandler{_W}", r"mcc-ai", rf"standardkontraktklausul{_W}",
        rf"erhvervsstyrelsen{_W}", rf"kontrakt{_W}", rf"tærskelværdi{_W}", rf"udbudsprocedure{_W}",
        rf"tildelingskriteri{_W}", rf"rammeaftale{_W}", rf"miniudbud{_W}", r"sla", rf"serviceniveau{_W}",
        rf"købe{_W}", r"køb\b", rf"indkøb{_W}", rf"licens{_W}", rf"produktansvar{_W}", r"nis2",
        rf"forsyningskæde{_W}",
        r"logs", r"menneskeligt tilsyn", rf"overensstemmelseserklæring{_W}", rf"certifikat{_W}", rf"registrere{_W}",
        rf"drift{_W}", rf"implementer{_W}", rf"klagenævn{_W}", rf"tilbudsgiver{_W}", rf"hoster{_W}", rf"sky{_W}",
        rf"standard ai-løsning{_W}", rf"revision{_W}", rf"audit{_W}", rf"kvalitetsstyringssystem{_W}",
        rf"leverandør{_W}",
        rf"brugsanvisning{_W}", rf"behandlingssikkerhed{_W}", rf"ansvar{_W}", rf"hæfte{_W}",
        r"finished", r"ready-made", r"off-the-shelf", r"ce-marked", r"ce marking", rf"deployer{_W}", rf"deploy{_W}",
        r"go-live", r"fundamental rights", r"transparency", r"chatbot", r"data processing agreement", r"dpa\b",
        rf"sub-processor{_W}", r"model contractual clauses", rf"contract{_W}", rf"threshold{_W}", r"tender procedure",
        r"award criteria", r"framework agreement", r"call off", r"service level", rf"buy{_W}", r"bought",
        rf"purchas{_W}", r"product liability", rf"liab{_W}", r"supply[- ]chain", r"human oversight",
        r"declaration of conformity", r"certified", rf"register{_W}", rf"vendor{_W}", r"quality management system",
        r"instructions for use", r"security of processing",
    ],
}


class ScenarioGuess(BaseModel):
    """The inferred scenario, how sure the router is (softmax of the scores), and which cues decided it."""

    scenario: str
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str
    scores: dict[str, float]
    cues: list[str] = Field(
        default_factory=list, description="the cue texts, as written in the question, named in the reason"
    )


@dataclass(frozen=True)
class Example:
    """One labelled question."""

    question: str
    language: str
    scenario: str
    split: str = "train"


def load_questions(path: Path = QUESTIONS_FILE) -> list[Example]:
    """The labelled routing questions; ValueError names the line and field that is wrong."""
    out: list[Example] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        for field in ("question", "language", "scenario", "split"):
            if not isinstance(row.get(field), str) or not row[field]:
                raise ValueError(f"{path}:{n}: field {field!r} missing or empty")
        if row["scenario"] not in SCENARIO_IDS:
            raise ValueError(f"{path}:{n}: field 'scenario': unknown scenario {row['scenario']!r}")
        if row["split"] not in ("train", "test"):
            raise ValueError(f"{path}:{n}: field 'split': expected 'train' or 'test', got {row['split']!r}")
        out.append(Example(row["question"], row["language"], row["scenario"], row["split"]))
    return out


def _language(question: str, language: str | None) -> str:
    """'da' or 'en': the given language when it is one of them, otherwise detected from the text."""
    if language in ("da", "en"):
        return language
    return detect_language(question)


_WORD = re.compile(r"\w+(?:-\w+)*", re.UNICODE)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class _Featurizer:
    """Questions -> feature matrix: cue indicators, then the scaled, normalised tf-idf of stemmed words."""

    def __init__(self, cues: dict[str, list[str]], vocabulary: list[str], idf: np.ndarray) -> None:
        self.cue_patterns = [
            (sid, re.compile(rf"(?<!\w){pattern}", re.UNICODE)) for sid in cues for pattern in cues[sid]
        ]
        self.vocabulary = vocabulary
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = idf
        self.n_cues = len(self.cue_patterns)

    @property
    def n_features(self) -> int:
        return self.n_cues + len(self.vocabulary)

    def cue_matches(self, question: str) -> list[tuple[int, str]]:
        """(cue index, matched text as written) for every cue that occurs in the question."""
        lowered = question.lower()
        found = []
        for i, (_, pattern) in enumerate(self.cue_patterns):
            m = pattern.search(lowered)
            if m:
                found.append((i, question[m.start() : m.end()]))
        return found

    def word_matches(self, question: str, language: str) -> dict[int, str]:
        """Vocabulary index -> the word as written in the question, for stems in the vocabulary."""
        out: dict[int, str] = {}
        for word in _WORD.findall(question):
            for stem in tokenize(word, language):
                j = self.index.get(stem)
                if j is not None and j not in out:
                    out[j] = word
        return out

    def vector(self, question: str, language: str) -> tuple[np.ndarray, list[tuple[int, str]], dict[int, str]]:
        x = np.zeros(self.n_features)
        cues = self.cue_matches(question)
        for i, _ in cues:
            x[i] = 1.0
        words = self.word_matches(question, language)
        if words:
            cols = np.fromiter(words, dtype=int)
            w = self.idf[cols]
            x[self.n_cues + cols] = WORD_SCALE * w / np.linalg.norm(w)
        return x, cues, words


def _fit(
    X: np.ndarray, y: np.ndarray, prior: np.ndarray, n_cues: int, cue_l2: float = CUE_L2, word_l2: float = WORD_L2
) -> np.ndarray:
    """Multinomial logistic regression by full-batch gradient descent; cue weights pulled towards `prior`.

    No intercept: the scenarios are equally likely a priori (the data are balanced), so a question
    without any known word scores 0.25 for each instead of leaning on a learned class bias.
    """
    n, f = X.shape
    Y = np.eye(prior.shape[0])[y]
    W = prior.copy()
    reg = np.full(f, word_l2)
    reg[:n_cues] = cue_l2
    for _ in range(STEPS):
        G = (_softmax(X @ W.T) - Y) / n
        W -= LEARNING_RATE * (G.T @ X + reg * (W - prior))
    return W


class ScenarioRouter:
    """Infers the procurement scenario of a question; trained at construction on the train split."""

    def __init__(self, questions_file: Path = QUESTIONS_FILE, *, exclude_test: bool = True) -> None:
        self.scenarios = load_scenarios()
        self.ids = list(SCENARIO_IDS)
        self.examples = load_questions(questions_file)
        train = [e for e in self.examples if e.split == "train"] if exclude_test else list(self.examples)
        self._fit_on(train + self._typical_examples())

    # --- training ---------------------------------------------------------------------------

    def _typical_examples(self) -> list[Example]:
        return [
            Example(q, lang, sid)
            for sid, scenario in self.scenarios.items()
            for lang in ("da", "en")
            for q in getattr(scenario.typical_questions, lang)
        ]

    def _fit_on(self, train: Sequence[Example], cue_l2: float = CUE_L2, word_l2: float = WORD_L2) -> None:
        """Fit features and weights on `train`; the typical questions are vectorised for the fallback reason."""
        self._featurizer, self.W = self._train(train, cue_l2, word_l2)
        self._typical = self._typical_vectors()

    def _train(
        self, train: Sequence[Example], cue_l2: float = CUE_L2, word_l2: float = WORD_L2
    ) -> tuple[_Featurizer, np.ndarray]:
        docs = [set(tokenize(e.question, e.language)) for e in train]
        df: dict[str, int] = {}
        for terms in docs:
            for t in terms:
                df[t] = df.get(t, 0) + 1
        vocabulary = sorted(df)
        idf = np.array([math.log((1 + len(docs)) / (1 + df[t])) + 1.0 for t in vocabulary])
        feat = _Featurizer(CUES, vocabulary, idf)
        X = np.stack([feat.vector(e.question, e.language)[0] for e in train])
        y = np.array([self.ids.index(e.scenario) for e in train])
        prior = np.zeros((len(self.ids), feat.n_features))
        for i, (sid, _) in enumerate(feat.cue_patterns):
            prior[self.ids.index(sid), i] = PRIOR
        return feat, _fit(X, y, prior, feat.n_cues, cue_l2, word_l2)

    def _typical_vectors(self) -> list[tuple[str, str, str, np.ndarray]]:
        """(scenario, language, question, word vector) of every typical question, for the fallback reason."""
        out = []
        for e in self._typical_examples():
            x, _, _ = self._featurizer.vector(e.question, e.language)
            out.append((e.scenario, e.language, e.question, x[self._featurizer.n_cues :]))
        return out

    # --- prediction -------------------------------------------------------------------------

    def predict(self, question: str, language: str | None = None) -> ScenarioGuess:
        """The most likely scenario, its softmax confidence, all scores and a one-line reason."""
        lang = _language(question, language)
        x, cue_hits, _ = self._featurizer.vector(question, lang)
        logits = self.W @ x
        probs = _softmax(logits)
        c = int(np.argmax(logits))
        scenario = self.ids[c]
        cues = self._deciding_cues(x, c, cue_hits)
        if cues:
            reason = _cue_reason(cues, lang)
        else:
            reason = self._nearest_typical_reason(x, scenario, lang)
        return ScenarioGuess(
            scenario=scenario,
            confidence=float(probs[c]),
            reason=reason,
            scores={sid: round(float(p), 4) for sid, p in zip(self.ids, probs)},
            cues=cues,
        )

    def _deciding_cues(self, x: np.ndarray, c: int, cue_hits: list[tuple[int, str]]) -> list[str]:
        """Up to three lexicon cues (as written in the question) that add most to the chosen scenario.

        Only curated cues are named: plain word weights also count in the score, but a word such as
        'loven' or 'what' is no explanation a user can check.
        """
        others = np.delete(self.W, c, axis=0).mean(axis=0)
        margin = x * (self.W[c] - others)
        best: dict[str, float] = {}
        for i, text in cue_hits:
            best[text] = max(best.get(text, -math.inf), float(margin[i]))
        chosen: list[str] = []
        for text, value in sorted(best.items(), key=lambda kv: -kv[1]):
            if value < MIN_CUE_CONTRIBUTION or len(chosen) == 3:
                break
            if not any(_contains(t, text) or _contains(text, t) for t in chosen):
                chosen.append(text)
        return chosen

    def _nearest_typical_reason(self, x: np.ndarray, scenario: str, language: str) -> str:
        words = x[self._featurizer.n_cues :]
        pool = [t for t in self._typical if t[0] == scenario and t[1] == language]
        best = max(pool, key=lambda t: float(words @ t[3]))[2]
        if language == "da":
            return f"Ingen tydelige stikord; nærmest det typiske spørgsmål: '{best}'"
        return f"No clear cue; nearest typical question: '{best}'"

    # --- evaluation -------------------------------------------------------------------------

    def evaluate(self, split: str = "test") -> dict:
        """Accuracy overall and per language, and a confusion matrix (rows: gold, columns: predicted)."""
        rows = [e for e in self.examples if e.split == split]
        return _evaluate(self, rows, self.ids)


def _evaluate(router: ScenarioRouter, rows: Sequence[Example], ids: list[str]) -> dict:
    confusion = {g: {p: 0 for p in ids} for g in ids}
    per_lang: dict[str, list[int]] = {}
    errors = []
    for e in rows:
        guess = router.predict(e.question, e.language)
        ok = guess.scenario == e.scenario
        confusion[e.scenario][guess.scenario] += 1
        per_lang.setdefault(e.language, []).append(int(ok))
        if not ok:
            errors.append({"question": e.question, "gold": e.scenario, "predicted": guess.scenario})
    hits = sum(sum(v) for v in per_lang.values())
    return {
        "n": len(rows),
        "accuracy": hits / len(rows) if rows else 0.0,
        "per_language": {lang: {"n": len(v), "accuracy": sum(v) / len(v)} for lang, v in sorted(per_lang.items())},
        "confusion": confusion,
        "errors": errors,
    }


def _contains(outer: str, inner: str) -> bool:
    """True when `inner` occurs in `outer` as whole words ('pilot' in 'pilot i sandkassen', not 'ai' in 'chain')."""
    return re.search(rf"(?<!\w){re.escape(inner)}(?!\w)", outer, re.IGNORECASE) is not None


def _cue_reason(cues: list[str], language: str) -> str:
    quoted = [f"'{c}'" for c in cues]
    joiner = " og " if language == "da" else " and "
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + joiner + quoted[-1]
    return f"Spørgsmålet nævner {listed}" if language == "da" else f"The question mentions {listed}"


@lru_cache(maxsize=1)
def default_router() -> ScenarioRouter:
    """One shared router per process (construction trains it)."""
    return ScenarioRouter()


def cross_validate(folds: int = 5, cue_l2: float = CUE_L2, word_l2: float = WORD_L2) -> float:
    """Accuracy of k-fold cross-validation on the train split only (how the hyperparameters were chosen)."""
    router = ScenarioRouter()
    train = [e for e in router.examples if e.split == "train"]
    hits = 0
    for k in range(folds):
        fit = [e for i, e in enumerate(train) if i % folds != k] + router._typical_examples()
        held = [e for i, e in enumerate(train) if i % folds == k]
        router._fit_on(fit, cue_l2, word_l2)
        hits += sum(router.predict(e.question, e.language).scenario == e.scenario for e in held)
    return hits / len(train)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m kb.routing [--cv] [--split test|train]`: print the evaluation as JSON."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--cv", action="store_true", help="5-fold cross-validation on the train split")
    args = parser.parse_args(argv)
    if args.cv:
        print(json.dumps({"cv_accuracy": cross_validate()}, indent=2))
        return
    t0 = time.perf_counter()
    router = ScenarioRouter()
    built = time.perf_counter() - t0
    report = router.evaluate(args.split)
    report["construction_s"] = round(built, 3)
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
