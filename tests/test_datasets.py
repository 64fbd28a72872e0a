"""The evaluation datasets (eval/datasets/*.jsonl) against the real corpus.

Every gold reference must point at a passage the ingest really produces (in-force
versions only), every key fact must be written in a passage that a gold reference
covers, and the smoke subset must stay inside the small test knowledge base (SUBSET).
The splits (eval/splits.py): tune and test follow the hash rule, are disjoint from each
other, from calibration.jsonl and from the router's kb/data/scenario_questions.jsonl (by
id and by normalised question text); smoke is drawn from tune or calibration, never from
test; nothing outside the evaluation names the locked test set, and the fitting tools
refuse it. Parsing only, no embedding: the corpus is parsed once per module.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from eval import splits
from kb.references import covers, is_reference
from tests.conftest import REPO, SUBSET, write_subset_manifest

DATASETS = REPO / "eval" / "datasets"
FILES = ("tune", "test", "calibration", "smoke")
MEASURED = ("tune", "test", "calibration")  # checked against the whole corpus
SCENARIOS = {"behov", "prototype", "demo", "loesning"}
LANGUAGES = {"da", "en"}
FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "question": str,
    "language": str,
    "scenario": (str, type(None)),
    "gold_refs": list,
    "key_facts": list,
    "answerable": bool,
}
DOC_IDS = {
    "ai-act", "gdpr", "mdr", "ivdr", "ehds", "pld", "nis2", "udbudsloven", "klagenaevnsloven",
    "annonceringsbekendtgoerelsen", "medicinsk-udstyr-loven", "komiteloven", "sundhedsloven",
    "databeskyttelsesloven", "mcc-ai-high-risk", "mcc-ai-non-high-risk", "erst-it-rammeaftale",
    "hleg-ethics-guidelines",
}


def _load(name: str) -> list[dict[str, Any]]:
    path = DATASETS / f"{name}.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


DATA = {name: _load(name) for name in FILES}


def _doc(ref: str) -> str:
    return ref.split(":", 1)[0]


class Corpus:
    """Parsed in-force passages: (ref, language, text), indexed by doc id."""

    def __init__(self, passages: list[tuple[str, str, str]]) -> None:
        self.by_doc: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for ref, lang, text in passages:
            self.by_doc[_doc(ref)].append((ref, lang, text.lower()))
        self.languages = {doc: {lang for _, lang, _ in ps} for doc, ps in self.by_doc.items()}

    def has(self, gold: str) -> bool:
        return any(covers(gold, ref) for ref, _, _ in self.by_doc.get(_doc(gold), []))

    def fact_in(self, fact: str, gold_refs: list[str], language: str) -> bool:
        """The fact is written in a passage covered by a gold ref, in the question's language when the doc has it."""
        needle = fact.lower()
        for gold in gold_refs:
            doc = _doc(gold)
            lang = language if language in self.languages.get(doc, set()) else None
            for ref, plang, text in self.by_doc.get(doc, []):
                if covers(gold, ref) and (lang is None or plang == lang) and needle in text:
                    return True
        return False


def _parse(manifest_path: Path, corpus_dir: Path) -> Corpus:
    from ingest.manifest import load_manifest, resolve_files
    from ingest.pipeline import parse_text

    manifest = load_manifest(manifest_path)
    passages: list[tuple[str, str, str]] = []
    for doc in manifest.documents:
        for text in doc.texts:
            for p in parse_text(doc, text, resolve_files(text, corpus_dir), 1800):
                if p.in_force:
                    passages.append((p.ref, p.language, p.text))
    return Corpus(passages)


@pytest.fixture(scope="module")
def corpus(corpus_passages: dict[str, list[Any]]) -> Corpus:
    return Corpus([(p.ref, p.language, p.text) for passages in corpus_passages.values() for p in passages if p.in_force])


@pytest.fixture(scope="module")
def subset_corpus(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    manifest = write_subset_manifest(tmp_path_factory.mktemp("datasets-subset") / "manifest.yaml")
    return _parse(manifest, corpus_dir)


# --- format ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_every_line_has_the_design_fields(name: str) -> None:
    assert DATA[name], f"{name}.jsonl is empty"
    for q in DATA[name]:
        assert set(q) >= set(FIELDS), (q.get("id"), set(FIELDS) - set(q))
        for field, kind in FIELDS.items():
            assert isinstance(q[field], kind), (q["id"], field, q[field])
        assert q["question"].strip(), q["id"]
        assert q["language"] in LANGUAGES, (q["id"], q["language"])
        assert q["scenario"] is None or q["scenario"] in SCENARIOS, (q["id"], q["scenario"])
        assert all(isinstance(r, str) for r in q["gold_refs"]), q["id"]
        assert all(isinstance(f, str) and f.strip() for f in q["key_facts"]), q["id"]


@pytest.mark.parametrize("name", FILES)
def test_gold_refs_are_valid_references(name: str) -> None:
    for q in DATA[name]:
        assert len(q["gold_refs"]) <= 3, q["id"]
        assert len(q["key_facts"]) <= 3, q["id"]
        for ref in q["gold_refs"]:
            assert is_reference(ref), (q["id"], ref)
            assert _doc(ref) in DOC_IDS, (q["id"], ref)


@pytest.mark.parametrize("name", FILES)
def test_answerable_and_unanswerable_are_consistent(name: str) -> None:
    for q in DATA[name]:
        if q["answerable"]:
            assert q["gold_refs"] and q["key_facts"], q["id"]
        else:
            assert q["gold_refs"] == [] and q["key_facts"] == [], q["id"]


def test_ids_are_unique_within_and_across_the_splits() -> None:
    for name in FILES:
        ids = [q["id"] for q in DATA[name]]
        assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    for a, b in (("tune", "test"), ("tune", "calibration"), ("test", "calibration")):
        assert not {q["id"] for q in DATA[a]} & {q["id"] for q in DATA[b]}, (a, b)


# --- composition ----------------------------------------------------------------------


def _composition(qs: list[dict[str, Any]], minimum: int, min_unanswerable: int) -> None:
    assert len(qs) >= minimum, len(qs)
    danish = sum(q["language"] == "da" for q in qs)
    assert danish / len(qs) >= 0.6, f"{danish}/{len(qs)} Danish"
    assert {q["scenario"] for q in qs} >= SCENARIOS
    assert None in {q["scenario"] for q in qs}
    assert sum(not q["answerable"] for q in qs) >= min_unanswerable


def test_tune_and_test_composition() -> None:
    _composition(DATA["tune"], 95, 8)
    _composition(DATA["test"], 150, 12)
    former_dev = [q for q in DATA["tune"] + DATA["test"] if splits.FORMER_DEV_ID.match(q["id"])]
    _composition(former_dev, 258, 24)
    fresh = [q for q in DATA["test"] if not splits.FORMER_DEV_ID.match(q["id"])]  # written for test after the split
    _composition(fresh, 30, 4)
    for name in ("tune", "test"):
        per_doc = Counter(d for q in DATA[name] for d in {_doc(r) for r in q["gold_refs"]})
        assert set(per_doc) == DOC_IDS, (name, DOC_IDS - set(per_doc))


def test_calibration_composition() -> None:
    _composition(DATA["calibration"], 100, 30)


# --- the splits -------------------------------------------------------------------------


def test_tune_and_test_follow_the_hash_rule() -> None:
    """Re-deriving the split from the two files gives the two files: no question moved by hand."""
    former_dev = [q for q in DATA["tune"] + DATA["test"] if splits.FORMER_DEV_ID.match(q["id"])]
    former_dev.sort(key=lambda q: q["id"])
    tune, test = splits.split(former_dev)
    assert all(splits.FORMER_DEV_ID.match(q["id"]) for q in DATA["tune"])  # fresh questions go to test only
    assert [q["id"] for q in tune] == sorted(q["id"] for q in DATA["tune"])
    assert [q["id"] for q in test] == sorted(q["id"] for q in DATA["test"] if splits.FORMER_DEV_ID.match(q["id"]))
    # stratified: each (language, answerable) stratum has about TUNE_SHARE of its questions in tune
    for stratum in {(q["language"], q["answerable"]) for q in former_dev}:
        members = [q for q in former_dev if (q["language"], q["answerable"]) == stratum]
        in_tune = [q for q in tune if (q["language"], q["answerable"]) == stratum]
        assert abs(len(in_tune) - splits.TUNE_SHARE * len(members)) <= 0.5, stratum


def _texts(rows: list[dict[str, Any]]) -> set[str]:
    return {splits.normalise_question(q["question"]) for q in rows}


def test_splits_are_disjoint_by_id_and_by_text() -> None:
    routing = splits.read_jsonl(REPO / "kb" / "data" / "scenario_questions.jsonl")
    sets = {"tune": DATA["tune"], "test": DATA["test"], "calibration": DATA["calibration"]}
    for a, b in (("tune", "test"), ("tune", "calibration"), ("test", "calibration")):
        assert not _texts(sets[a]) & _texts(sets[b]), (a, b, sorted(_texts(sets[a]) & _texts(sets[b]))[:3])
    # the router trains on scenario_questions.jsonl (its rows have no id; some are borrowed from calibration)
    for name in ("tune", "test"):
        shared = _texts(sets[name]) & _texts(routing)
        assert not shared, (name, sorted(shared)[:3])
    assert splits.normalise_question("  Hvad  siger §  73?") == splits.normalise_question("hvad siger § 73")


def test_smoke_is_drawn_from_tune_or_calibration_never_test() -> None:
    drawn_from = {q["id"]: q for q in DATA["tune"] + DATA["calibration"]}
    smoke = DATA["smoke"]
    assert len(smoke) == 30
    for q in smoke:
        assert q["id"] in drawn_from, q["id"]
        assert q == drawn_from[q["id"]], q["id"]
    assert not {q["id"] for q in smoke} & {q["id"] for q in DATA["test"]}
    assert not _texts(smoke) & _texts(DATA["test"])
    assert {q["language"] for q in smoke} == LANGUAGES
    assert {q["scenario"] for q in smoke} >= SCENARIOS
    assert sum(not q["answerable"] for q in smoke) == 5
    assert {_doc(r) for q in smoke for r in q["gold_refs"]} <= set(SUBSET)


# Files that may name the locked test set: the split itself, the evaluation's own tests, and the docs that
# tell how to report on it. Everything that fits, calibrates, trains or tunes must not.
MAY_NAME_TEST = {"eval/splits.py", "tests/test_datasets.py", "tests/test_eval.py", "README.md", "docs/benchmarks.md"}


def test_nothing_fits_on_the_locked_test_set() -> None:
    import subprocess

    from eval.calibrate import calibrate

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    naming = []
    for path in tracked:
        if path.startswith("eval/datasets/") or path in MAY_NAME_TEST or not (REPO / path).is_file():
            continue
        if path.endswith((".py", ".yaml", ".yml", ".json", ".toml", ".cfg", ".md", ".sh", ".txt")) or path in (
            "Makefile", ".ci/run"
        ):
            text = (REPO / path).read_text(encoding="utf-8", errors="replace")
            if "test.jsonl" in text or "dev.jsonl" in text:
                naming.append(path)
    assert not naming, f"these files name the locked test set (or the former dev set that holds it): {naming}"
    # the shipped abstention model was fitted on calibration.jsonl, and the fitting tool refuses the test set
    model = json.loads((REPO / "kb" / "data" / "abstention.json").read_text())
    assert model["calibration"]["dataset"].endswith("calibration.jsonl")
    with pytest.raises(splits.LockedDatasetError, match="locked"):
        calibrate(None, splits.TEST)  # type: ignore[arg-type]  # refused before the knowledge base is touched
    with pytest.raises(splits.LockedDatasetError, match=DATA["test"][0]["id"]):
        splits.refuse_locked(DATASETS / "copy.jsonl", [DATA["test"][0]])
    splits.refuse_locked(splits.TUNE, DATA["tune"])  # tune is for tuning


# --- against the corpus -----------------------------------------------------------------


@pytest.mark.parametrize("name", MEASURED)
def test_gold_refs_exist_in_the_corpus(name: str, corpus: Corpus) -> None:
    missing = [(q["id"], ref) for q in DATA[name] for ref in q["gold_refs"] if not corpus.has(ref)]
    assert not missing, missing


@pytest.mark.parametrize("name", MEASURED)
def test_key_facts_are_written_in_a_gold_passage(name: str, corpus: Corpus) -> None:
    absent = [
        (q["id"], fact)
        for q in DATA[name]
        for fact in q["key_facts"]
        if not corpus.fact_in(fact, q["gold_refs"], q["language"])
    ]
    assert not absent, absent


def test_smoke_gold_refs_exist_in_the_test_subset(subset_corpus: Corpus) -> None:
    missing = [(q["id"], ref) for q in DATA["smoke"] for ref in q["gold_refs"] if not subset_corpus.has(ref)]
    assert not missing, missing
    absent = [
        (q["id"], fact)
        for q in DATA["smoke"]
        for fact in q["key_facts"]
        if not subset_corpus.fact_in(fact, q["gold_refs"], q["language"])
    ]
    assert not absent, absent
