"""The four scenarios as data (kb/data/scenarios.yaml) and the scenario router (kb/routing.py).

Profile references are checked against the real corpus, parsed once (no embedding),
in the versions in force. Router accuracy is measured on the held-out test split of
kb/data/scenario_questions.jsonl, which the router never trains on, against the
majority baseline; a scenario-neutral question gets "no clear scenario".
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kb.keywords import tokenize
from kb.references import is_reference
from kb.routing import (
    QUESTIONS_FILE,
    ScenarioGuess,
    ScenarioRouter,
    _text_key,
    description_examples,
    description_lexicon,
    evaluation_sets,
    load_questions,
    typical_examples,
)
from kb.scenarios import SCENARIO_IDS, load_scenarios, parse_scenarios, profile_refs, scenario_label

REPO = Path(__file__).resolve().parent.parent

# issue 19: a question about review deadlines, asked from no particular stage of a procurement
NEUTRAL_DA = "Hvor lang tid har en tilbudsgiver til at klage over en tildelingsbeslutning?"
NEUTRAL_EN = "How long does a tenderer have to challenge an award decision?"
MARGIN = 0.1  # the router must beat always answering the majority scenario by this much on held-out rows


@pytest.fixture(scope="module")
def router() -> ScenarioRouter:
    return ScenarioRouter()


def _exists(ref: str, refs: set[str]) -> bool:
    return ref in refs or any(r.startswith(ref + ".") for r in refs)


# --- the scenarios --------------------------------------------------------------------------


def test_four_scenarios_in_design_order() -> None:
    assert list(load_scenarios()) == list(SCENARIO_IDS) == ["behov", "prototype", "demo", "loesning"]
    assert scenario_label("loesning", "da") == "LØSNING"
    assert scenario_label("loesning", "en") == "Solution"
    assert scenario_label("behov", "de") == "Need"  # any other language falls back to English


def test_texts_present_in_both_languages() -> None:
    for sid, scenario in load_scenarios().items():
        for field in (scenario.label, scenario.description, scenario.details):
            assert field.da.strip() and field.en.strip(), sid
        assert "\n" not in scenario.description.da.strip() and "\n" not in scenario.description.en.strip(), sid
        assert len(scenario.details.da) > len(scenario.description.da), sid
        for lang in ("da", "en"):
            questions = getattr(scenario.typical_questions, lang)
            assert 5 <= len(questions) <= 8, (sid, lang)
        for entry in scenario.profile:
            assert entry.why.da.strip() and entry.why.en.strip(), (sid, entry.ref)


def test_profiles_are_large_enough_and_span_documents() -> None:
    for sid in SCENARIO_IDS:
        refs = profile_refs(sid)
        assert 15 <= len(refs) <= 30, (sid, len(refs))
        assert len(set(refs)) == len(refs), f"{sid}: duplicate profile refs"
        assert len({r.split(":")[0] for r in refs}) >= 3, sid


def test_profile_refs_are_valid_and_exist_in_the_corpus(corpus_refs: set[str]) -> None:
    missing = []
    for sid in SCENARIO_IDS:
        for ref in profile_refs(sid):
            assert is_reference(ref), (sid, ref)
            if not _exists(ref, corpus_refs):
                missing.append((sid, ref))
    assert not missing, f"profile refs not in the in-force corpus: {missing}"


def test_profile_refs_reach_the_core_provisions() -> None:
    """The provisions the scenarios are defined by are in the right profiles."""
    assert "udbudsloven:§-73" in profile_refs("behov")
    assert "udbudsloven:§-39" in profile_refs("behov")
    assert "komiteloven:§-14" in profile_refs("prototype")
    assert "mdr:art-5.5" in profile_refs("prototype")
    assert "ai-act:art-60" in profile_refs("demo")
    assert "ai-act:art-57" in profile_refs("demo")
    for ref in ("ai-act:art-26", "ai-act:art-27", "ai-act:art-50", "gdpr:art-28", "erst-it-rammeaftale:section-16"):
        assert ref in profile_refs("loesning"), ref


def test_invalid_scenario_data_names_the_field() -> None:
    import yaml

    data = yaml.safe_load((REPO / "kb" / "data" / "scenarios.yaml").read_text(encoding="utf-8"))
    data["scenarios"][1]["label"].pop("en")
    with pytest.raises(ValueError, match=r"prototype: label\.en"):
        parse_scenarios(data)
    data = yaml.safe_load((REPO / "kb" / "data" / "scenarios.yaml").read_text(encoding="utf-8"))
    data["scenarios"][3]["profile"][0]["ref"] = "AI Act article 26"
    with pytest.raises(ValueError, match=r"loesning: profile\.0\.ref"):
        parse_scenarios(data)


# --- the routing questions ------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_question_set_shape() -> None:
    every = _rows(QUESTIONS_FILE)
    assert len({r["id"] for r in every}) == len(every), "duplicate ids"
    borrowed = [r for r in every if "source" in r]
    assert all(r["source"] == "eval/datasets/calibration.jsonl" and r["split"] == "train" for r in borrowed)
    # the borrowed rows are the calibration set's questions, labels unchanged, under their own ids
    calibration = {r["id"]: r for r in _rows(REPO / "eval/datasets/calibration.jsonl")}
    assert {r["id"] for r in borrowed} == set(calibration)
    for r in borrowed:
        c = calibration[r["id"]]
        assert (r["question"], r["language"], r["scenario"]) == (c["question"], c["language"], c["scenario"]), r["id"]
    evaluated = {e.question for rows in evaluation_sets().values() for e in rows}
    assert evaluated and not evaluated & {r["question"] for r in every}, "the evaluation's questions are never trained on"
    rows = [r for r in every if "source" not in r]  # our own labelled questions
    assert len(rows) >= 240
    assert all(set(r) == {"id", "question", "language", "scenario", "split"} for r in rows)
    per_scenario = Counter(r["scenario"] for r in rows)
    assert set(per_scenario) == set(SCENARIO_IDS) and min(per_scenario.values()) >= 60
    assert sum(r["language"] == "da" for r in rows) / len(rows) >= 0.6
    assert {r["language"] for r in rows} == {"da", "en"}
    assert len({r["question"].lower() for r in rows}) == len(rows), "duplicate questions"
    # stratified split: about 30 % test in every scenario and language
    for sid in SCENARIO_IDS:
        for lang in ("da", "en"):
            cell = [r for r in rows if r["scenario"] == sid and r["language"] == lang]
            share = sum(r["split"] == "test" for r in cell) / len(cell)
            assert 0.25 <= share <= 0.35, (sid, lang, share)
    typical = {q.question.lower() for q in typical_examples()}
    assert not typical & {r["question"].lower() for r in rows}, "typical questions reused verbatim"
    assert len(load_questions()) == len(every)


def test_bad_question_rows_name_the_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "x", "question": "Q?", "language": "da", "scenario": "pilot", "split": "train"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:1: field 'scenario'"):
        load_questions(bad)
    bad.write_text('{"question": "Q?", "language": "da", "scenario": "demo", "split": "train"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:1: field 'id'"):
        load_questions(bad)


# --- the router -----------------------------------------------------------------------------


def test_router_beats_the_majority_on_held_out_questions(router: ScenarioRouter) -> None:
    """Measured on the test rows (never trained on, never used to choose anything): a null guess counts as
    wrong, and the majority baseline answers the training questions' most common scenario every time."""
    report = router.evaluate("test")
    assert report["n"] >= 70
    majority = report["majority"]["accuracy"]
    assert report["accuracy"] >= majority + MARGIN, report
    for lang in ("da", "en"):
        assert report["per_language"][lang]["accuracy"] >= majority + MARGIN, (lang, report["per_language"])
    assert report["best_guess_accuracy"] >= report["accuracy"]
    confusion = report["confusion"]
    assert set(confusion) == {*SCENARIO_IDS, "none"}
    assert sum(sum(row.values()) for row in confusion.values()) == report["n"]
    assert sum(confusion[s][s] for s in SCENARIO_IDS) == round(report["accuracy"] * report["n"])


def test_training_data_excludes_every_test_row(router: ScenarioRouter) -> None:
    """No test row, no dev row is trained on; what is trained on is our train split, the calibration rows
    and the texts of scenarios.yaml. There is no hand-written cue list."""
    test = [e for e in router.examples if e.split == "test"]
    trained = router.training_set(router.questions, router.hyper)
    assert not router.training_ids & {e.id for e in test}
    texts = {e.question.lower() for e in trained}
    assert not texts & {e.question.lower() for e in test}
    assert not texts & {e.question.lower() for rows in evaluation_sets().values() for e in rows}
    assert {e.source for e in trained} <= {"scenario_questions", "calibration", "typical", "description"}
    import kb.routing

    assert not hasattr(kb.routing, "CUES")
    assert router.questions and all(e.split == "train" for e in router.questions)


def test_the_reason_lexicon_comes_from_the_scenario_descriptions() -> None:
    lexicon = description_lexicon()
    for sid in SCENARIO_IDS:
        own = {t for e in description_examples() + typical_examples() if e.scenario == sid for t in tokenize(e.question, e.language)}
        assert lexicon[sid] and lexicon[sid] <= own, sid
        for other in SCENARIO_IDS:
            assert other == sid or not lexicon[sid] & lexicon[other]


def test_neutral_question_gets_no_clear_scenario(router: ScenarioRouter) -> None:
    guess = router.predict(NEUTRAL_EN, "en")
    assert guess.scenario is None, guess
    assert guess.confidence < guess.threshold and guess.best in SCENARIO_IDS
    assert "assumes none" in guess.reason and not guess.cues


@pytest.mark.xfail(
    strict=True,
    reason="the training data say otherwise: the calibration set labels its Danish questions on review deadlines, "
    "standstill and award decisions (cal-041, cal-052, cal-053, cal-054) LØSNING, so the router is 77 % sure; "
    "it needs those labels settled, not a rule fitted to this question",
)
def test_danish_neutral_question_gets_no_clear_scenario(router: ScenarioRouter) -> None:
    guess = router.predict(NEUTRAL_DA, "da")
    assert guess.scenario is None, guess
    assert "antager intet scenarie" in guess.reason


def test_answer_without_a_clear_scenario_assumes_none(small_kb) -> None:  # type: ignore[no-untyped-def]
    info = small_kb.scenario_for(NEUTRAL_EN, None, "en")
    assert info.id is None and info.inferred and info.label == "No clear scenario"
    assert "assumes none" in info.reason and 0.0 <= info.confidence <= 1.0
    assert small_kb.scenario_profile(None) == []
    answer = small_kb.ask(NEUTRAL_EN)
    assert answer.scenario.id is None and answer.scenario.label == "No clear scenario"
    assert " scenario:" not in answer.answer  # no "In the … scenario" section: nothing was steered by one
    danish = small_kb.scenario_for("Hvordan bager man rugbrød?", None, "da")  # off the subject: no scenario
    assert danish.id is None and danish.label == "Intet klart scenarie" and "antager intet scenarie" in danish.reason


@pytest.mark.parametrize(
    ("question", "language", "scenario"),
    [
        ("Vi har bygget en prototype i et OPI-samarbejde. Må vi bruge data?", "da", "prototype"),
        ("A vendor offers a finished AI solution with CE marking. What must we check?", "en", "loesning"),
        ("Kan vi bruge et innovationspartnerskab, når intet findes?", "da", "behov"),
        ("Our pilot showed promising effect; can we join the AI regulatory sandbox?", "en", "demo"),
    ],
)
def test_clear_questions_and_their_reasons(router: ScenarioRouter, question: str, language: str, scenario: str) -> None:
    guess = router.predict(question, language)
    assert guess.scenario == scenario and guess.confidence >= guess.threshold, guess
    assert "\n" not in guess.reason
    if guess.cues:
        assert guess.reason.startswith("Spørgsmålet nævner" if language == "da" else "The question mentions")
    else:
        assert guess.reason.startswith("Ingen tydelige stikord" if language == "da" else "No clear cue")


def test_every_reason_quotes_the_question_and_the_description(router: ScenarioRouter) -> None:
    lexicon = description_lexicon()
    for e in router.examples[::3]:
        guess = router.predict(e.question, e.language)
        for word in guess.cues:
            assert word in e.question, (e.question, guess.cues)
            assert f"'{word}'" in guess.reason
            assert set(tokenize(word, e.language)) & lexicon[guess.scenario], (word, guess.scenario)  # type: ignore[index]


def test_confidence_and_scores(router: ScenarioRouter) -> None:
    for e in router.examples[::7]:
        guess = router.predict(e.question, e.language)
        assert isinstance(guess, ScenarioGuess)
        assert 0.0 <= guess.confidence <= 1.0
        assert set(guess.scores) == set(SCENARIO_IDS)
        assert abs(sum(guess.scores.values()) - 1.0) < 1e-3
        assert guess.scores[guess.best] == max(guess.scores.values())
        assert guess.scenario in (guess.best, None)
        assert (guess.scenario is None) == (guess.confidence < guess.threshold)
    empty = router.predict("", None)
    assert 0.0 <= empty.confidence <= 1.0 and empty.reason


def test_unknown_or_missing_language_is_detected(router: ScenarioRouter) -> None:
    da = router.predict("Hvordan kommer vi med i den regulatoriske sandkasse med vores pilot?", "xx")
    assert da.scenario == "demo" and da.reason.startswith(("Spørgsmålet", "Ingen"))
    en = router.predict("How do we get our pilot into the regulatory sandbox?", None)
    assert en.scenario == "demo" and en.reason.startswith(("The question", "No clear"))
    assert router.predict("Wie funktioniert das?", "de").reason  # anything else still gets an answer


def test_shipped_vectors_cover_the_training_texts(router: ScenarioRouter) -> None:
    """kb/data/scenario_vectors.npz holds a vector for every text the router trains on, so building a router
    embeds nothing (rewrite it with `python -m kb.routing --vectors` after editing the texts)."""
    import numpy as np

    from kb.routing import VECTORS_FILE

    with np.load(VECTORS_FILE) as data:
        shipped = set(map(str, data["keys"]))
        assert str(data["model"]) == router.vectors.model_name
    texts = [e.question for e in router.examples + typical_examples() + description_examples()]
    assert {_text_key(t) for t in texts} <= shipped


def test_router_is_deterministic(router: ScenarioRouter) -> None:
    # timings are the benchmarks' business, not the tests'
    again = ScenarioRouter()
    question = "Skal vi lave en DPIA, før leverandøren kører en pilot på vores data?"
    assert again.predict(question).model_dump() == router.predict(question).model_dump()
    assert again.threshold == router.threshold and again.temperature == router.temperature
