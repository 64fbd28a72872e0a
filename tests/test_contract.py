"""The contract draft per scenario (kb/contract.py, kb/data/contract.yaml): rules, engine, quotes, DOCX and CLI.

Every reference in the rules is checked against the parsed corpus (no embedding), over every scenario and every
combination of the answers the rules test. Quotes are checked against the subset knowledge base: each quoted
passage is the stored passage, word for word. The API is tested on the browser tests' live server
(tests/browser/test_contract_page.py), so no extra server starts here.
"""

from __future__ import annotations

import copy
import io
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kb.contract import CONTRACT_FILE, build_contract, contract_docx, contract_markdown, fill_ins, load_contract_rules, parse_contract_rules
from kb.knowledge_base import KnowledgeBase
from kb.references import covers, parse_reference
from kb.roadmap import UNKNOWN, RoadmapInputError, load_rules
from kb.vocabulary import SCENARIO_IDS
from tests.conftest import REPO, kb_env

LOESNING = {"high_risk": "annex_i", "health_data": "vendor_processor"}
HIGH_RISK_DOC, NON_HIGH_RISK_DOC = "mcc-ai-high-risk", "mcc-ai-non-high-risk"
MISSING = "(teksten er ikke i vidensbasen)"  # a clause the subset knowledge base does not hold, in a Danish draft


def _sections(draft: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {section["id"]: section for section in draft["sections"]}


def _clause_refs(section: dict[str, Any]) -> list[str]:
    return [clause["ref"] for clause in section["clauses"]]


def _provision_refs(section: dict[str, Any]) -> list[str]:
    return [provision["ref"] for provision in section["provisions"]]


def _all_refs(draft: dict[str, Any]) -> set[str]:
    return {ref for s in draft["sections"] for ref in (*_clause_refs(s), *_provision_refs(s))}


@pytest.fixture(scope="module")
def cited_corpus_refs(corpus_dir: Path) -> set[str]:
    """Every passage reference of the in-force texts of the documents the contract rules cite (a real parse)."""
    from ingest.manifest import load_manifest, resolve_files
    from ingest.pipeline import parse_text

    docs = {parse_reference(ref).doc_id for ref in load_contract_rules().all_refs()}
    refs: set[str] = set()
    for doc in load_manifest(REPO / "ingest" / "manifest.yaml").documents:
        if doc.doc_id in docs:
            for text in doc.texts:
                if text.in_force:
                    refs.update(p.ref for p in parse_text(doc, text, resolve_files(text, corpus_dir), 1800))
    return refs


@pytest.fixture(scope="module")
def loesning(small_kb: KnowledgeBase) -> dict[str, Any]:
    return build_contract("loesning", LOESNING, "da", kb=small_kb)


# --- the rules --------------------------------------------------------------------------------


def test_rules_load_and_every_section_is_bilingual() -> None:
    rules = load_contract_rules()
    assert len(rules.sections) >= 12
    for section in rules.sections:
        for text in (section.title, section.settles):
            assert text.da.strip() and text.en.strip() and text.da != text.en, section.id
    # each scenario gets sections of its own, beyond the ones every contract has
    for scenario in SCENARIO_IDS:
        assert any(scenario in s.when.get("scenario", []) for s in rules.sections), scenario


def _combinations() -> list[tuple[str, dict[str, str]]]:
    """Every scenario x every combination of the answers the contract rules test, 'unknown' included."""
    rules, roadmap = load_contract_rules(), load_rules()
    keys = sorted(
        {k for s in rules.sections for item in (s, *s.clauses, *s.provisions) for k in item.when} - {"scenario"}
    )
    values = [[*roadmap.question(key).values, UNKNOWN] for key in keys]
    return [(scenario, dict(zip(keys, combo))) for scenario in SCENARIO_IDS for combo in itertools.product(*values)]


def test_every_ref_resolves_over_all_scenarios_and_answers(cited_corpus_refs: set[str]) -> None:
    rules = load_contract_rules()
    missing = sorted(ref for ref in rules.all_refs() if not any(covers(ref, r) for r in cited_corpus_refs))
    assert not missing, f"refs in kb/data/contract.yaml not in the in-force corpus: {missing}"
    combinations = _combinations()
    assert len(combinations) > 1000
    cited: set[str] = set()
    for scenario, answers in combinations:
        draft = build_contract(scenario, answers, "en")
        for section in draft["sections"]:
            assert section["clauses"], f"{scenario} {answers}: section {section['id']} has no clause"
        cited |= _all_refs(draft)
    assert cited == rules.all_refs(), f"never cited: {sorted(rules.all_refs() - cited)}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["sections"][0]["clauses"].append("gdpr:art-28"), r"section scope: clauses\.5: gdpr:art-28 is not in a contract document"),
        (lambda d: d["sections"][0]["provisions"].append("erst-it-rammeaftale:section-16"), r"section scope: .*contract clause"),
        (lambda d: d["sections"][0]["provisions"].append("AI Act article 26"), r"section scope: provisions\.\d+\.ref: not a reference"),
        (lambda d: d["sections"][1].__setitem__("when", {"price": "high"}), r"section partnership-phases: when: unknown question key 'price'"),
        (lambda d: d["sections"][1].__setitem__("when", {"high_risk": "maybe"}), r"section partnership-phases: when\.high_risk: unknown value 'maybe'"),
        (lambda d: d["sections"][1].__setitem__("id", "scope"), r"section scope: id: duplicate section id"),
        (lambda d: d["sections"][1]["title"].pop("en"), r"section partnership-phases: title\.en"),
        (lambda d: d["sections"][1].__setitem__("clauses", []), r"section partnership-phases: clauses"),
    ],
)
def test_invalid_rules_name_the_section_and_field(change, message: str) -> None:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(yaml.safe_load(CONTRACT_FILE.read_text(encoding="utf-8")))
    change(data)
    with pytest.raises(ValueError, match=message):
        parse_contract_rules(data)


def test_fill_ins_come_from_the_clause_text(small_kb: KnowledgeBase) -> None:
    """Placeholders and options as the model texts write them (the stored passages, not typed copies)."""
    def text(ref: str) -> str:
        return " ".join(p.text for p in small_kb.passages_for_ref(ref))

    points = fill_ins(text("mcc-ai-high-risk:section-4.5"))
    assert {"text": "[optional]", "kind": "option"} in points
    assert {"text": "[NAME OF PUBLIC ORGANISATION]", "kind": "placeholder"} in points
    assert {"text": "[VALG 1 FORUDGÅENDE SPECIFIK GODKENDELSE]", "kind": "option"} in fill_ins(text("erst-it-rammeaftale:section-16.6"))
    assert {"text": "xxx", "kind": "placeholder"} in fill_ins(text("erst-it-rammeaftale:section-16.18"))
    assert fill_ins(text("erst-it-rammeaftale:section-16.3")) == []


# --- the engine: what must show ---------------------------------------------------------------


def test_loesning_high_risk_with_a_processor(loesning: dict[str, Any]) -> None:
    sections = _sections(loesning)
    # the data processing agreement: GDPR Art. 28 behind the ERST package's DPA clauses, quoted
    dpa = sections["data-processing"]
    assert "gdpr:art-28" in _provision_refs(dpa)
    assert all(parse_reference(c["ref"]).doc_id == "erst-it-rammeaftale" for c in dpa["clauses"])
    assert "erst-it-rammeaftale:section-16.9" in _clause_refs(dpa)
    assert all(c["passages"] and c["language"] == "da" and c["in_language"] for c in dpa["clauses"])
    art28 = next(p for p in dpa["provisions"] if p["ref"] == "gdpr:art-28")
    assert art28["passage_id"] and art28["language"] == "da"
    # the deployer's duties: AI Act Art. 26 and the MCC-AI high-risk clauses on oversight, logging and audit
    duties = sections["deployer-duties"]
    assert "ai-act:art-26" in _provision_refs(duties) and "ai-act:art-14" in _provision_refs(duties)
    for ref in ("mcc-ai-high-risk:section-7", "mcc-ai-high-risk:section-5", "mcc-ai-high-risk:section-12",
                "mcc-ai-high-risk:section-18", "mcc-ai-high-risk:section-14", "mcc-ai-high-risk:section-annex.d"):
        assert ref in _clause_refs(duties), ref
    assert not any(NON_HIGH_RISK_DOC in ref for ref in _clause_refs(duties))
    oversight = next(c for c in duties["clauses"] if c["ref"] == "mcc-ai-high-risk:section-7")
    assert "Human oversight" in oversight["heading"] and oversight["passages"]
    # the MCC-AI exist in English only: quoted in English in a Danish draft, and marked
    assert oversight["language"] == "en" and oversight["in_language"] is False
    # exit and return of data, with the ERST supplier's duties at the end and the DPA's deletion clause
    exit_ = sections["exit"]
    assert {"erst-it-rammeaftale:section-17.28", "erst-it-rammeaftale:section-16.10"} <= set(_clause_refs(exit_))
    assert next(c for c in exit_["clauses"] if c["ref"] == "erst-it-rammeaftale:section-17.28")["passages"]
    assert {"delivery-and-acceptance", "service-levels", "ce-evidence", "changes"} <= set(sections)
    assert not {"partnership-phases", "training-data", "clinical-test"} & set(sections)
    # what the buyer fills in, read from the quoted clauses
    assert any(p["text"] == "[NAME OF PUBLIC ORGANISATION]" for p in duties["fill_ins"])
    assert loesning["answers"]["high_risk"] == {"value": "annex_i", "source": "answer"}
    assert any(v["doc_id"] == "mcc-ai-high-risk" and v["version"] == "draft 0.9 (2023)" for v in loesning["versions"])


def test_every_quoted_clause_is_its_passage_text(small_kb: KnowledgeBase, loesning: dict[str, Any]) -> None:
    drafts = [loesning, *(build_contract(s, {"high_risk": "no", "health_data": "joint_controllers"}, "en", kb=small_kb)
                          for s in SCENARIO_IDS)]
    quoted = 0
    for draft in drafts:
        for section in draft["sections"]:
            for clause in section["clauses"]:
                for passage in clause["passages"]:
                    stored = small_kb.passage(passage["passage_id"])
                    assert passage["text"] == stored.text, passage["passage_id"]
                    assert covers(clause["ref"], stored.ref) and stored.in_force and stored.language == clause["language"]
                    quoted += 1
                # every passage the knowledge base holds under the reference, in the shown language, in order
                if clause["passages"]:
                    expected = [p.passage_id for p in small_kb.passages_for_ref(clause["ref"]) if p.language == clause["language"]]
                    assert [p["passage_id"] for p in clause["passages"]] == expected
    assert quoted > 60


def test_high_risk_no_swaps_to_the_non_high_risk_clauses(small_kb: KnowledgeBase, loesning: dict[str, Any]) -> None:
    draft = build_contract("loesning", {**LOESNING, "high_risk": "no"}, "da", kb=small_kb)
    clauses = {ref for s in draft["sections"] for ref in _clause_refs(s)}
    assert not any(parse_reference(ref).doc_id == HIGH_RISK_DOC for ref in clauses)
    duties = _sections(draft)["deployer-duties"]
    assert {"mcc-ai-non-high-risk:section-7", "mcc-ai-non-high-risk:section-5"} <= set(_clause_refs(duties))
    assert "ai-act:art-26" not in _provision_refs(duties) and "ai-act:art-4" in _provision_refs(duties)
    assert all(c["passages"] for c in duties["clauses"])
    high = {ref for s in loesning["sections"] for ref in _clause_refs(s) if parse_reference(ref).doc_id == HIGH_RISK_DOC}
    assert len(high) >= 10


def test_no_health_data_drops_the_data_processing_section(small_kb: KnowledgeBase) -> None:
    sections = _sections(build_contract("loesning", {**LOESNING, "health_data": "no"}, "en", kb=small_kb))
    assert "data-processing" not in sections and "joint-controllers" not in sections
    assert "erst-it-rammeaftale:section-16.10" not in _clause_refs(sections["exit"])
    assert "exit" in sections and "deployer-duties" in sections


def test_behov_cites_the_innovation_partnership_73_to_78(small_kb: KnowledgeBase) -> None:
    draft = build_contract("behov", {"high_risk": "annex_i"}, "en", kb=small_kb)
    sections = _sections(draft)
    cited = _provision_refs(sections["partnership-phases"]) + _provision_refs(sections["partnership-payment-and-ending"])
    for number in range(73, 79):
        assert any(covers(f"udbudsloven:§-{number}", ref) for ref in cited), number
    # instalments and ending after a milestone: § 78(2) and (3), resolved to the passages in force
    payment = {p["ref"]: p for p in sections["partnership-payment-and-ending"]["provisions"]}
    assert payment["udbudsloven:§-78.3"]["passage_id"] and payment["udbudsloven:§-78.3"]["version"] == "LBK 116/2025"
    assert "rights-in-results" in sections and "udbudsloven:§-74.2" in _provision_refs(sections["rights-in-results"])
    assert not {"delivery-and-acceptance", "deployer-duties", "clinical-test"} & set(sections)


def test_prototype_and_demo_sections() -> None:
    prototype = _sections(build_contract("prototype", {"health_data": "joint_controllers", "high_risk": "no"}, "en"))
    assert {"rights-in-results", "training-data", "publication", "joint-controllers"} <= set(prototype)
    assert "udbudsloven:§-22" in _provision_refs(prototype["rights-in-results"])
    assert "mcc-ai-non-high-risk:section-11" in _clause_refs(prototype["training-data"])
    demo = _sections(build_contract("demo", {"medical_purpose": "yes", "device_class": "iia"}, "en"))
    test = demo["clinical-test"]
    assert {"mdr:art-62", "mdr:art-69", "komiteloven:§-1.5"} <= set(_provision_refs(test))
    assert "komiteloven:§-14" not in _provision_refs(test)  # a device's investigation is under the MDR
    assert "permitted-use" in demo


def test_unknown_answers_keep_both_variants_marked_open() -> None:
    sections = _sections(build_contract("loesning", {"health_data": "vendor_processor"}, "en"))
    duties = sections["deployer-duties"]
    docs = {parse_reference(c["ref"]).doc_id for c in duties["clauses"]}
    assert docs == {HIGH_RISK_DOC, NON_HIGH_RISK_DOC}
    assert all(c["open"] and c["depends_on"] == ["high_risk"] for c in duties["clauses"])
    assert next(p for p in duties["provisions"] if p["ref"] == "ai-act:art-26")["open"] is True
    assert next(p for p in duties["provisions"] if p["ref"] == "ai-act:art-4")["open"] is False
    assert duties["open"] is False  # the section applies either way; only its variants are open
    assert sections["ce-evidence"]["open"] and sections["ce-evidence"]["depends_on"] == ["medical_purpose"]
    # an explicit "unknown" is the same, and answering settles it
    explicit = _sections(build_contract("loesning", {"health_data": "vendor_processor", "high_risk": "unknown"}, "en"))
    assert [c["ref"] for c in explicit["deployer-duties"]["clauses"]] == _clause_refs(duties)
    settled = _sections(build_contract("loesning", {"health_data": "vendor_processor", "medical_purpose": "yes", "device_class": "iib"}, "en"))
    assert {parse_reference(c["ref"]).doc_id for c in settled["deployer-duties"]["clauses"]} == {HIGH_RISK_DOC}
    assert not any(c["open"] for c in settled["deployer-duties"]["clauses"])


@pytest.mark.parametrize(
    ("scenario", "answers", "field", "code"),
    [
        ("solution", {}, "scenario", "invalid_scenario"),
        ("loesning", {"price": "high"}, "answers", "unknown_question"),
        ("loesning", {"high_risk": "maybe"}, "answers.high_risk", "invalid_answer"),
    ],
)
def test_bad_input_names_the_field_and_valid_values(scenario: str, answers: dict[str, str], field: str, code: str) -> None:
    with pytest.raises(RoadmapInputError) as caught:
        build_contract(scenario, answers)
    assert caught.value.field == field and caught.value.code == code
    for value in caught.value.valid:
        assert value in str(caught.value)


# --- the draft as a document ------------------------------------------------------------------


def _read_docx(data: bytes) -> Any:
    from docx import Document

    return Document(io.BytesIO(data))


def test_docx_has_the_same_sections_clauses_and_references_as_the_json(loesning: dict[str, Any]) -> None:
    from docx.enum.text import WD_COLOR_INDEX

    document = _read_docx(contract_docx(loesning))
    paragraphs = document.paragraphs
    styles = [p.style.name for p in paragraphs]
    # the title page: scenario, answers, versions of the texts used, then a page break
    assert paragraphs[0].text == "Kontraktudkast: LØSNING" and styles[0] == "Title"
    cells = [cell.text for row in document.tables[0].rows for cell in row.cells]
    assert "Ja, via bilag I (medicinsk udstyr)" in cells and "Den findes færdig (givet af scenariet)" in cells
    versions = [p.text for p in paragraphs if p.style.name == "List Bullet"]
    assert any("draft 0.9 (2023)" in v for v in versions) and any("LBK 289/2024" in v for v in versions)
    # one Heading 1 per section, in order
    headings = [p.text for p in paragraphs if p.style.name == "Heading 1"]
    assert [h.split(" [")[0] for h in headings] == [f"{n}. {s['title']}" for n, s in enumerate(loesning["sections"], 1)]
    for heading, section in zip(headings, loesning["sections"]):
        assert ("[åbent – afhænger af: " + ", ".join(section["depends_on"]) + "]" in heading) == section["open"], heading
    # under each: the clauses (Heading 3 = reference) with their quotes, then the numbered provisions
    starts = [i for i, p in enumerate(paragraphs) if p.style.name == "Heading 1"] + [len(paragraphs)]
    for section, start, end in zip(loesning["sections"], starts, starts[1:]):
        block = paragraphs[start:end]
        refs = [p.text.split(" ")[0] for p in block if p.style.name == "Heading 3"]
        assert refs == _clause_refs(section), section["id"]
        quotes = [p.text for p in block if p.style.name == "Quote"]
        expected = [t for c in section["clauses"] for t in ([pa["text"] for pa in c["passages"]] or [MISSING])]
        assert quotes == expected, section["id"]
        numbered = [p.text for p in block if p.style.name == "Normal" and p.text[:1].isdigit()]
        assert [t.split(" ")[1] for t in numbered] == _provision_refs(section)  # "1. gdpr:art-28 – heading (version)"
    # the fill-in points are highlighted where they stand in the quoted text
    marked = {r.text for p in paragraphs for r in p.runs if r.font.highlight_color == WD_COLOR_INDEX.YELLOW}
    assert {"[NAME OF PUBLIC ORGANISATION]", "[optional]"} <= marked


def test_markdown_names_every_section_clause_and_provision(loesning: dict[str, Any]) -> None:
    text = contract_markdown(loesning)
    assert text.startswith("# Kontraktudkast: LØSNING")
    for number, section in enumerate(loesning["sections"], 1):
        assert f"## {number}. {section['title']}" in text
        for ref in (*_clause_refs(section), *_provision_refs(section)):
            assert ref in text
    assert "**[NAME OF PUBLIC ORGANISATION]**" in text


def _kb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "kb.cli", *args], env=env, capture_output=True, timeout=300, cwd=REPO, check=False)


def test_cli_contract(small_kb: KnowledgeBase, subset_manifest: Path, corpus_dir: Path, tmp_path: Path) -> None:
    env = kb_env(small_kb.settings.data_dir, subset_manifest, corpus_dir)
    args = ["contract", "--scenario", "loesning", "--answer", "high_risk=annex_i", "--answer", "health_data=vendor_processor"]
    out = tmp_path / "draft.docx"
    run = _kb(*args, "--lang", "en", "--format", "docx", "--out", str(out), env=env)
    assert run.returncode == 0, run.stderr
    draft = build_contract("loesning", LOESNING, "en", kb=small_kb)
    headings = [p.text.split(" [")[0] for p in _read_docx(out.read_bytes()).paragraphs if p.style.name == "Heading 1"]
    assert headings == [f"{n}. {s['title']}" for n, s in enumerate(draft["sections"], 1)]
    bad = _kb("contract", "--scenario", "loesning", "--answer", "high_risk=maybe", env=env)
    assert bad.returncode != 0 and b"annex_i, annex_iii, no, unknown" in bad.stderr and not bad.stdout


def test_benchmark_times_the_draft_and_its_documents(small_kb: KnowledgeBase) -> None:
    from eval.bench_contract import CASES, main

    result = main(["--repeat", "1"], kb=small_kb)
    for name in ("rules_only", "draft", "markdown", "docx"):
        assert result[name]["n"] == len(CASES) and 0 < result[name]["p50_ms"] <= result[name]["max_ms"], name
    assert result["most_passages_quoted"] > 50 and result["first_build_ms"] > 0
