"""The roadmap from need to operation (kb/roadmap.py, kb/data/roadmap.yaml): rules, engine, API and CLI.

Every reference in the rules is checked against the parsed corpus (no embedding); passages are
resolved against the subset knowledge base, where refs outside the subset stay listed without one.
The API runs on a real uvicorn, the CLI as a real subprocess.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kb.knowledge_base import KnowledgeBase
from kb.references import covers, is_reference
from kb.roadmap import ROADMAP_FILE, RoadmapInputError, build_roadmap, load_rules, parse_rules, questions_for
from kb.vocabulary import SCENARIO_IDS
from tests.conftest import REPO, kb_env, make_app_client

PHASES = ["need", "procedure", "tender", "validation", "deployment", "operation"]


def _steps(roadmap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for phase in roadmap["phases"] for step in phase["steps"]}


def _cited(roadmap: dict[str, Any]) -> set[str]:
    return {c["ref"] for step in _steps(roadmap).values() for c in step["refs"] + step["clauses"]}


def _has_ref(roadmap: dict[str, Any], ref: str) -> bool:
    """The roadmap cites `ref` or a provision inside it."""
    return any(covers(ref, cited) for cited in _cited(roadmap))


def _raw_rules() -> dict[str, Any]:
    return yaml.safe_load(ROADMAP_FILE.read_text(encoding="utf-8"))


# --- the rules --------------------------------------------------------------------------------


def test_rules_load_with_six_phases_and_the_required_decisions() -> None:
    rules = load_rules()
    assert [phase.id for phase in rules.phases] == PHASES
    for key in ("medical_purpose", "device_class", "high_risk", "health_data", "contract_value", "market",
                "rd_benefit", "prior_involvement", "ce_marked"):
        assert key in rules.keys, key
    assert len(rules.steps) >= 40
    for phase in PHASES:
        assert any(step.phase == phase for step in rules.steps), phase
    for step in rules.steps:
        assert step.title.da.strip() and step.title.en.strip() and step.what.da.strip() and step.what.en.strip(), step.id
        assert len(step.refs) <= 6 and len(step.clauses) <= 6, f"{step.id}: keep a rule small enough to review on its own"


def test_every_ref_in_the_rules_exists_in_the_corpus(corpus_refs: set[str]) -> None:
    rules = load_rules()
    refs = rules.all_refs()
    assert len(refs) > 100
    missing = sorted(ref for ref in refs if not (is_reference(ref) and any(covers(ref, r) for r in corpus_refs)))
    assert not missing, f"refs in kb/data/roadmap.yaml not in the in-force corpus: {missing}"


def test_the_rules_cite_the_core_provisions() -> None:
    refs = load_rules().all_refs()
    for ref in ("mdr:art-2.1", "mdr:annex-viii.6.3", "ai-act:art-6.1", "ai-act:annex-iii.5", "gdpr:art-6", "gdpr:art-9.2",
                "gdpr:art-26", "gdpr:art-28", "gdpr:art-35", "databeskyttelsesloven:§-7", "udbudsloven:§-6",
                "udbudsloven:§-73", "udbudsloven:§-67", "udbudsloven:§-61", "udbudsloven:§-56", "udbudsloven:§-22",
                "udbudsloven:§-39.2", "udbudsloven:§-136", "mdr:art-62", "komiteloven:§-14", "ai-act:art-26",
                "ai-act:art-27", "ai-act:art-50", "mdr:art-83", "nis2:art-21.2", "erst-it-rammeaftale:section-16",
                "mcc-ai-high-risk:section-16"):
        assert ref in refs, ref


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["steps"][0].__setitem__("refs", ["AI Act article 26"]), r"step describe-need: refs: .*not a reference"),
        (lambda d: d["steps"][0].__setitem__("phase", "later"), r"step describe-need: phase: unknown phase 'later'"),
        (lambda d: d["steps"][2]["when"].__setitem__("medical", "yes"), r"step medical-device-qualification: when: unknown question key 'medical'"),
        (lambda d: d["steps"][2]["when"].__setitem__("medical_purpose", "maybe"), r"medical-device-qualification: when\.medical_purpose: unknown value 'maybe'"),
        (lambda d: d["steps"][0].__setitem__("refs", ["mcc-ai-high-risk:section-3"]), r"step describe-need: refs: .*contract clause"),
        (lambda d: d["steps"][0].__setitem__("clauses", ["gdpr:art-28"]), r"step describe-need: clauses: .*not in a contract document"),
        (lambda d: d["steps"][0].__setitem__("who", "hospital"), r"step describe-need: who"),
        (lambda d: d["questions"][0]["options"][0].__setitem__("value", True), r"question medical_purpose: options\.0\.value"),
        (lambda d: d["defaults"]["loesning"].__setitem__("market", "buy"), r"defaults\.loesning\.market: unknown value 'buy'"),
        (lambda d: d["steps"][1].__setitem__("id", "describe-need"), r"step describe-need: id: duplicate step id"),
    ],
)
def test_invalid_rules_name_the_rule_and_field(change, message: str) -> None:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(_raw_rules())
    change(data)
    with pytest.raises(ValueError, match=message):
        parse_rules(data)


# --- the engine: one set of answers per scenario ----------------------------------------------

CASES: dict[str, dict[str, Any]] = {
    # a finished, CE-marked class IIa AI medical device above the threshold, hosted by the vendor
    "loesning": {
        "answers": {"medical_purpose": "yes", "device_class": "iia", "health_data": "vendor_processor",
                    "contract_value": "above_threshold", "prior_involvement": "no", "interacts_with_persons": "no"},
        "steps": ["eu-procedure", "open-procedure", "require-ce-evidence", "require-ai-conformity", "deployer-duties",
                  "data-processing-agreement", "dpia", "post-market-duties-in-contract", "supply-chain-security",
                  "monitor-and-keep-logs", "vigilance", "standstill"],
        "absent": ["innovation-partnership", "below-threshold-procedure", "clinical-investigation",
                   "fundamental-rights-impact", "neutralise-prior-involvement", "transparency"],
        "refs": ["udbudsloven:§-6", "udbudsloven:§-55", "ai-act:art-26", "gdpr:art-28", "mdr:art-20", "mdr:art-83",
                 "nis2:art-21.2", "erst-it-rammeaftale:section-16", "mcc-ai-high-risk:section-14"],
    },
    # a clinical need; a class IIb tool must be developed, paid and owned by the region alone
    "behov": {
        "answers": {"medical_purpose": "yes", "device_class": "iib", "rd_benefit": "buyer_only",
                    "contract_value": "above_threshold", "health_data": "in_house", "prior_involvement": "no",
                    "interacts_with_persons": "no"},
        "steps": ["describe-need", "market-dialogue", "innovation-partnership", "competitive-dialogue",
                  "clinical-investigation", "ethics-approval", "in-house-exemption", "health-data-research"],
        "absent": ["open-procedure", "negotiated-procedure", "rd-exemption", "require-ce-evidence",
                   "data-processing-agreement"],
        "refs": ["udbudsloven:§-39.1", "udbudsloven:§-73", "udbudsloven:§-78", "udbudsloven:§-33", "mdr:art-62",
                 "komiteloven:§-14", "mdr:art-5.5", "sundhedsloven:§-46"],
    },
    # an OPI prototype built with the hospital: shared R&D, joint controllers, the partner will bid later
    "prototype": {
        "answers": {"medical_purpose": "yes", "device_class": "iia", "rd_benefit": "shared",
                    "health_data": "joint_controllers", "contract_value": "below_threshold",
                    "interacts_with_persons": "no"},
        "steps": ["neutralise-prior-involvement", "rd-exemption", "joint-controller-arrangement", "research-scope",
                  "below-threshold-procedure", "clinical-investigation"],
        "absent": ["eu-procedure", "innovation-partnership", "data-processing-agreement", "research-goods"],
        "refs": ["udbudsloven:§-39.2", "udbudsloven:§-136", "udbudsloven:§-22", "gdpr:art-26", "ai-act:art-2.6",
                 "udbudsloven:§-193", "mcc-ai-high-risk:section-16"],
    },
    # a first version triaging emergency patients (Annex III), not a medical device, to be adapted
    "demo": {
        "answers": {"medical_purpose": "no", "high_risk": "annex_iii", "health_data": "vendor_processor",
                    "contract_value": "above_threshold", "prior_involvement": "yes", "interacts_with_persons": "yes"},
        "steps": ["not-a-medical-device", "high-risk-annex-iii", "negotiated-procedure", "competitive-dialogue",
                  "research-goods", "real-world-testing", "fundamental-rights-impact", "register-use",
                  "inform-affected-persons", "transparency", "neutralise-prior-involvement"],
        "absent": ["innovation-partnership", "open-procedure", "clinical-investigation", "vigilance",
                   "require-ce-evidence", "high-risk-annex-i"],
        "refs": ["udbudsloven:§-61", "ai-act:art-60", "ai-act:art-27", "ai-act:art-49", "ai-act:art-50",
                 "ai-act:annex-iii.5", "udbudsloven:§-81.1"],
    },
}


@pytest.mark.parametrize("scenario", SCENARIO_IDS)
def test_each_scenario_leads_to_the_right_steps(scenario: str) -> None:
    case = CASES[scenario]
    roadmap = build_roadmap(scenario, case["answers"], "en")
    steps = _steps(roadmap)
    assert [phase["id"] for phase in roadmap["phases"]] == PHASES
    for step_id in case["steps"]:
        assert step_id in steps, f"{scenario}: missing {step_id}"
        assert steps[step_id]["open"] is False, f"{scenario}: {step_id} should be settled"
    for step_id in case["absent"]:
        assert step_id not in steps, f"{scenario}: {step_id} should not apply"
    for ref in case["refs"]:
        assert _has_ref(roadmap, ref), f"{scenario}: {ref} not cited"
    assert roadmap["questions"] == [], f"{scenario}: every question answered, yet {[q['key'] for q in roadmap['questions']]}"
    assert not [s for s in steps.values() if s["open"]], "all answered: nothing open"


def test_the_issue_example_high_risk_device_above_threshold() -> None:
    """A finished high-risk AI medical device above the threshold: EU procedure, Art. 26, a DPA under Art. 28, CE checks."""
    roadmap = build_roadmap("loesning", CASES["loesning"]["answers"], "da")
    steps = _steps(roadmap)
    assert roadmap["answers"]["high_risk"] == {"value": "annex_i", "source": "derived"}
    assert roadmap["answers"]["market"] == {"value": "exists", "source": "scenario"}
    assert "udbudsloven:§-55" in [c["ref"] for c in steps["eu-procedure"]["refs"]]
    assert "ai-act:art-26" in [c["ref"] for c in steps["deployer-duties"]["refs"]]
    assert steps["deployer-duties"]["who"] == "buyer"
    assert "gdpr:art-28" in [c["ref"] for c in steps["data-processing-agreement"]["refs"]]
    assert "erst-it-rammeaftale:section-16" in [c["ref"] for c in steps["data-processing-agreement"]["clauses"]]
    assert "mdr:art-20" in [c["ref"] for c in steps["require-ce-evidence"]["refs"]]
    # Danish texts, and the phase a step belongs to
    tender = next(p for p in roadmap["phases"] if p["id"] == "tender")
    assert tender["title"] == "Udbud og kontrakt"
    assert "data-processing-agreement" in [s["id"] for s in tender["steps"]]
    assert steps["data-processing-agreement"]["title"] == "Databehandleraftale"


def test_unknown_answers_give_both_branches_marked_open() -> None:
    answers = dict(CASES["loesning"]["answers"])
    del answers["contract_value"]
    steps = _steps(build_roadmap("loesning", answers, "en"))
    for step_id in ("eu-procedure", "below-threshold-procedure", "small-purchase", "open-procedure", "standstill"):
        assert steps[step_id]["open"] is True, step_id
        assert steps[step_id]["depends_on"] == ["contract_value"], step_id
    assert steps["deployer-duties"]["open"] is False
    # an explicit "unknown" is the same, and the question is not asked again
    explicit = build_roadmap("loesning", {**answers, "contract_value": "unknown"}, "en")
    assert _steps(explicit)["eu-procedure"]["open"] is True
    assert "contract_value" not in [q["key"] for q in explicit["questions"]]
    # answering settles it: one branch, the others gone
    settled = _steps(build_roadmap("loesning", {**answers, "contract_value": "below_threshold"}, "en"))
    assert settled["below-threshold-procedure"]["open"] is False
    assert "eu-procedure" not in settled and "small-purchase" not in settled


def test_unknown_medical_purpose_keeps_device_and_non_device_branches() -> None:
    roadmap = build_roadmap("demo", {}, "en")
    steps = _steps(roadmap)
    assert steps["medical-device-qualification"]["open"] and steps["not-a-medical-device"]["open"]
    assert steps["high-risk-annex-i"]["open"] and steps["high-risk-annex-iii"]["open"] and steps["not-high-risk"]["open"]
    # device_class waits until the software is known to have a medical purpose
    keys = [q["key"] for q in roadmap["questions"]]
    assert keys[0] == "medical_purpose" and "device_class" not in keys and "market" not in keys  # demo gives market
    after = [q["key"] for q in build_roadmap("demo", {"medical_purpose": "yes"}, "en")["questions"]]
    assert after[0] == "device_class" and "ce_marked" not in after  # demo: not yet CE marked


def test_answers_override_the_scenario_and_derivations() -> None:
    # a "solution" that turns out to need development
    steps = _steps(build_roadmap("loesning", {"market": "develop", "contract_value": "above_threshold"}, "en"))
    assert "innovation-partnership" in steps and "open-procedure" not in steps
    # class I software is not high-risk through Annex I: the question is asked instead of derived
    roadmap = build_roadmap("loesning", {"medical_purpose": "yes", "device_class": "i"}, "en")
    assert "high_risk" not in roadmap["answers"]
    assert roadmap["questions"][0]["key"] == "high_risk"
    # the asker's own answer wins over a derivation
    roadmap = build_roadmap("loesning", {"medical_purpose": "yes", "device_class": "iii", "high_risk": "no"}, "en")
    assert roadmap["answers"]["high_risk"]["source"] == "answer"
    assert "not-high-risk" in _steps(roadmap)


@pytest.mark.parametrize(
    ("scenario", "answers", "field", "valid"),
    [
        ("solution", {}, "scenario", list(SCENARIO_IDS)),
        ("loesning", {"price": "high"}, "answers", None),
        ("loesning", {"contract_value": "huge"}, "answers.contract_value",
         ["above_threshold", "below_threshold", "under_500k", "unknown"]),
    ],
)
def test_bad_input_names_the_valid_values(scenario: str, answers: dict[str, str], field: str, valid: list[str] | None) -> None:
    with pytest.raises(RoadmapInputError) as caught:
        build_roadmap(scenario, answers)
    assert caught.value.field == field
    assert caught.value.valid == (valid if valid is not None else load_rules().keys)
    for value in caught.value.valid:
        assert value in str(caught.value)


def test_questions_for_a_scenario_show_what_it_already_answers() -> None:
    questions = {q["key"]: q for q in questions_for("prototype", "da")}
    assert list(questions) == load_rules().keys
    assert questions["prior_involvement"]["value"] == {"value": "yes", "source": "scenario"}
    assert "value" not in questions["contract_value"]
    assert questions["medical_purpose"]["text"].startswith("Har softwaren")
    assert [o["value"] for o in questions["medical_purpose"]["options"]] == ["yes", "no"]


# --- passages from the knowledge base --------------------------------------------------------


def test_refs_resolve_to_passages_where_the_kb_holds_them(small_kb: KnowledgeBase) -> None:
    roadmap = build_roadmap("loesning", CASES["loesning"]["answers"], "da", kb=small_kb)
    steps = _steps(roadmap)
    art26 = next(c for c in steps["deployer-duties"]["refs"] if c["ref"] == "ai-act:art-26")
    assert art26["passage_id"] and art26["language"] == "da"
    passage = small_kb.passage(art26["passage_id"])
    assert covers("ai-act:art-26", passage.ref) and passage.language == "da"
    dpa = next(c for c in steps["data-processing-agreement"]["clauses"] if c["ref"] == "erst-it-rammeaftale:section-16")
    assert dpa["passage_id"] and covers("erst-it-rammeaftale:section-16", small_kb.passage(dpa["passage_id"]).ref)
    # MDR Art. 20 is outside the test subset: still listed, without a passage
    ce = next(c for c in steps["require-ce-evidence"]["refs"] if c["ref"] == "mdr:art-20")
    assert ce["passage_id"] is None and ce["doc_id"] == "mdr"
    # an English roadmap prefers English passages where the act has them
    english = _steps(build_roadmap("loesning", CASES["loesning"]["answers"], "en", kb=small_kb))
    assert next(c for c in english["deployer-duties"]["refs"] if c["ref"] == "ai-act:art-26")["language"] == "en"


# --- the API and the CLI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(small_kb: KnowledgeBase) -> Iterator[httpx.Client]:
    with make_app_client(small_kb) as c:
        yield c


@pytest.mark.slow
def test_api_questions_and_roadmap(client: httpx.Client) -> None:
    response = client.get("/api/roadmap/questions", params={"scenario": "loesning", "lang": "en"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scenario"] == "loesning" and body["scenario_label"] == "Solution"
    assert [q["key"] for q in body["questions"]] == load_rules().keys
    response = client.post("/api/roadmap", json={"scenario": "loesning", "answers": CASES["loesning"]["answers"], "language": "en"})
    assert response.status_code == 200, response.text
    roadmap = response.json()
    assert set(roadmap) >= {"scenario", "questions", "phases"}
    steps = _steps(roadmap)
    assert set(steps["deployer-duties"]) >= {"title", "what", "who", "refs", "clauses", "open"}
    art26 = next(c for c in steps["deployer-duties"]["refs"] if c["ref"] == "ai-act:art-26")
    assert art26["passage_id"]
    passage = client.get(f"/api/passages/{art26['passage_id']}")
    assert passage.status_code == 200 and covers("ai-act:art-26", passage.json()["passage"]["ref"])
    assert client.get("/roadmap").headers["content-type"].startswith("text/html")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "code", "field", "valid_has"),
    [
        ({"scenario": "solution"}, "invalid_scenario", "scenario", "loesning"),
        ({"scenario": "demo", "answers": {"price": "high"}}, "unknown_question", "answers", "contract_value"),
        ({"scenario": "demo", "answers": {"market": "buy"}}, "invalid_answer", "answers.market", "develop"),
    ],
)
def test_api_bad_input_is_422_naming_the_valid_values(client: httpx.Client, body: dict, code: str, field: str, valid_has: str) -> None:
    response = client.post("/api/roadmap", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["field"] == field and valid_has in error["valid"]
    response = client.get("/api/roadmap/questions", params={"scenario": "x"})
    assert response.status_code == 422 and response.json()["error"]["valid"] == list(SCENARIO_IDS)


def _kb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kb.cli", *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO, check=False
    )


def test_cli_roadmap(small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path) -> None:
    env = kb_env(small_kb.settings.data_dir, subset_manifest, corpus_dir)
    args = ["roadmap", "--scenario", "loesning", "--lang", "en"]
    for key, value in CASES["loesning"]["answers"].items():
        args += ["--answer", f"{key}={value}"]
    run = _kb(*args, "--json", env=env)
    assert run.returncode == 0, run.stderr
    roadmap = json.loads(run.stdout)
    assert "deployer-duties" in _steps(roadmap) and roadmap["questions"] == []
    text = _kb(*args, env=env)
    assert text.returncode == 0 and "Deployer obligations" in text.stdout and "ai-act:art-26" in text.stdout
    bad = _kb("roadmap", "--scenario", "demo", "--answer", "market=buy", env=env)
    assert bad.returncode != 0 and "exists, adapt, develop" in bad.stderr and not bad.stdout
    malformed = _kb("roadmap", "--scenario", "demo", "--answer", "market", env=env)
    assert malformed.returncode != 0 and "key=value" in malformed.stderr
