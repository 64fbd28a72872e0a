"""The evaluation suite: metric functions on hand-made cases, the support test's agreement with its labels,
and a real run of the smoke dataset over ours + BM25 on the subset knowledge base (floors, JSON keys, report)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eval import metrics as M
from eval import support

REPO = Path(__file__).resolve().parent.parent
SMOKE = REPO / "eval" / "datasets" / "smoke.jsonl"
DESIGN_KEYS = (
    "n", "recall@1", "recall@5", "recall@10", "mrr@10", "citation_precision", "citation_recall", "key_fact_recall",
    "scenario_accuracy", "abstention_precision", "abstention_recall", "latency_ms_p50", "latency_ms_p95",
)


# --- retrieval metrics -------------------------------------------------------------------------


def test_recall_counts_distinct_refs_and_each_gold_once() -> None:
    gold = ["ai-act:art-26", "gdpr:art-28.3"]
    ranking = ["ai-act:art-26.1", "ai-act:art-26.1", "ai-act:art-26.2", "mdr:art-10", "gdpr:art-28.3.a"]
    # distinct: art-26.1, art-26.2, mdr, gdpr 28.3.a -> art-26 hit at rank 1, gdpr at rank 4
    assert M.recall_at_k(gold, ranking, 1) == 0.5
    assert M.recall_at_k(gold, ranking, 3) == 0.5
    assert M.recall_at_k(gold, ranking, 4) == 1.0
    assert M.mrr_at_k(gold, ranking, 10) == 1.0
    assert M.mrr_at_k(gold, ["mdr:art-10", "gdpr:art-28.3"], 10) == 0.5
    # nDCG: hits at distinct ranks 1 and 4, ideal at 1 and 2; the second art-26 sub-ref gains nothing
    expected = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert M.ndcg_at_k(gold, ranking, 10) == pytest.approx(expected)


def test_matching_rule_is_the_design_prefix_rule() -> None:
    assert M.recall_at_k(["ai-act:art-26"], ["ai-act:art-260"], 10) == 0.0
    assert M.recall_at_k(["ai-act:art-26.1"], ["ai-act:art-26"], 10) == 0.0  # a parent does not hit a child
    assert M.recall_at_k(["udbudsloven:§-73"], ["udbudsloven:§-73.2"], 10) == 1.0
    assert M.mrr_at_k(["ai-act:art-26"], ["x:art-1"] * 3 + ["ai-act:art-26.5"], 10) == 0.5  # duplicates collapse
    assert M.mrr_at_k(["ai-act:art-26"], [f"x:art-{i}" for i in range(10)] + ["ai-act:art-26"], 10) == 0.0
    assert M.ndcg_at_k(["a:art-1"], ["a:art-1"], 10) == 1.0


# --- grounding ---------------------------------------------------------------------------------


def _word_support(sentence: str, passages) -> bool:  # type: ignore[no-untyped-def]
    """A toy support test for exact cases: every word of the sentence occurs in the passages."""
    words = set(" ".join(passages).split())
    return all(w in words for w in sentence.split())


def test_alce_citation_precision_and_recall() -> None:
    sentences = [
        M.CitedSentence("a b", ["a b c"]),  # supported, its citation relevant
        M.CitedSentence("a d", ["a", "d"]),  # supported only together: both citations needed
        M.CitedSentence("a b", ["a b", "x y"]),  # supported; the second citation irrelevant
        M.CitedSentence("q", ["x"]),  # unsupported
        M.CitedSentence("q", []),  # no citation: unsupported, no citation to count
    ]
    precision, recall = M.citation_scores(sentences, _word_support)
    assert recall == 3 / 5
    assert precision == 4 / 6  # relevant: 1 + 2 + 1 + 0 of 1 + 2 + 2 + 1 citations
    assert M.citation_scores([], _word_support) == (None, None)


def test_faithfulness_reads_the_shown_answer() -> None:
    text = "a b [1]\nc d [2] e f [1]\n\nIn the DEMO scenario:\nProvisions that matter: x [2].\n\nSources:\n[1] ai-act:art-1 – T"
    passages = {1: "a b", 2: "c d"}
    skip = lambda line: line.startswith("Provisions")  # noqa: E731
    assert M.shown_claims(text, skip) == [("a b", [1]), ("c d", [2]), ("e f", [1])]
    assert M.faithfulness(text, passages, skip, support=_word_support) == 2 / 3
    assert M.faithfulness("no marks here", passages) is None


def test_key_facts_percentile_and_cited_gold() -> None:
    assert M.key_fact_recall(["Seks  måneder", "logfiler"], "… i mindst seks\nmåneder [1]") == 0.5
    assert M.percentile([10, 20, 30, 40], 50) == 25
    assert M.percentile([1.0] * 19 + [100.0], 95) == pytest.approx(1.0 + 0.05 * 99)
    assert M.percentile([], 50) is None
    assert M.cited_gold_precision(["gdpr:art-9"], ["gdpr:art-9.2", "gdpr:art-9.2", "mdr:art-1"]) == 0.5


def _result(i: int, **kw) -> M.QuestionResult:  # type: ignore[no-untyped-def]
    base = dict(id=f"q{i}", question="?", language="da", scenario=None, answerable=True, gold_refs=["a:art-1"], key_facts=[])
    base.update(kw)
    return M.QuestionResult(**base)  # type: ignore[arg-type]


def test_summary_abstention_scenario_and_groups() -> None:
    results = [
        _result(1, abstained=False, answer_text="x", scenario="demo", predicted_scenario="demo", retrieved_refs=["a:art-1"],
                latency_ms=10.0, key_facts=["x", "y"]),
        _result(2, abstained=True, answer_text="no", scenario="behov", predicted_scenario="demo", retrieved_refs=[],
                latency_ms=30.0, language="en", key_facts=["x"]),
        _result(3, abstained=True, answer_text="no", answerable=False, gold_refs=[], latency_ms=20.0),
        _result(4, abstained=False, answer_text="y", answerable=False, gold_refs=[], latency_ms=40.0),
    ]
    s = M.summarize(results)
    assert s["n"] == 4
    assert s["recall@1"] == 0.5 and s["mrr@10"] == 0.5
    assert s["scenario_accuracy"] == 0.5
    assert s["abstention_precision"] == 0.5 and s["abstention_recall"] == 0.5
    assert s["answerable_declined_rate"] == 0.5
    assert s["key_fact_recall"] == 0.25  # 1/2 for q1, 0 for the declined q2
    assert s["latency_ms_p50"] == 25.0
    full = M.full_metrics(results)
    assert set(full["per_language"]) == {"da", "en"}
    assert set(full["per_document"]) == {"a", "unanswerable"}
    assert set(full["per_scenario"]) == {"behov", "demo", "none"}
    assert full["per_language"]["en"]["recall@1"] == 0.0


# --- the support test --------------------------------------------------------------------------


def test_support_is_containment_of_content_words() -> None:
    passage = "Deployers shall keep the logs for a period of at least six months."
    assert support.support_score("Deployers shall keep the logs for at least six months.", passage) == 1.0
    assert support.supports("Deployers keep the logs for at least six months.", passage)
    assert not support.supports("Deployers keep the logs for at least ten years.", passage)
    assert not support.supports("Deployers keep the logs and report them to the authority every week.", passage)
    assert support.cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    assert support.cohen_kappa([True, True, False, False], [True, False, True, False]) == 0.0


def test_support_labels_and_agreement() -> None:
    labels = support.load_labels()
    assert len(labels) >= 60
    assert {r["passage_language"] for r in labels} == {"da", "en"}
    kinds = {r["kind"] for r in labels}
    assert {"extract", "paraphrase", "partial", "wrong_passage", "translation"} <= kinds
    assert 0.3 < sum(bool(r["supported"]) for r in labels) / len(labels) < 0.7
    best = support.calibrate(labels)
    assert abs(best.threshold - support.SUPPORT_THRESHOLD) < 0.02  # the constant is the calibrated one
    agreement = support.agreement(labels)
    assert agreement.accuracy >= 0.7 and agreement.kappa >= 0.45
    # strict by design: never accepts a sentence checked against the wrong passage or adding a claim
    assert agreement.by_kind["wrong_passage"].get("disagree", 0) == 0
    assert agreement.by_kind["partial"].get("disagree", 0) == 0
    assert agreement.by_kind["extract"].get("disagree", 0) == 0


# --- a real run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(small_kb):  # type: ignore[no-untyped-def]
    from eval.runner import run_file

    return run_file(small_kb, SMOKE, ["ours", "bm25"], progress=False)


@pytest.mark.slow
def test_runner_metrics_json(smoke_run) -> None:  # type: ignore[no-untyped-def]
    metrics = smoke_run.metrics
    json.dumps(metrics)  # serialisable
    for key in DESIGN_KEYS:
        assert key in metrics, key
        for lang in ("da", "en"):
            assert key in metrics["per_language"][lang], (lang, key)
    assert metrics["n"] == sum(1 for line in SMOKE.read_text().splitlines() if line.strip())
    assert set(metrics["systems"]) == {"ours", "bm25"}
    assert metrics["systems"]["ours"]["recall@5"] == metrics["recall@5"]
    assert metrics["systems"]["bm25"]["citation_precision"] is None  # retrieval only
    assert metrics["systems"]["bm25"]["recall@10"] is not None
    assert "per_document" in metrics and "per_scenario" in metrics
    assert metrics["errors"] == 0


@pytest.mark.slow
def test_floors_hold_on_the_subset_kb(smoke_run) -> None:  # type: ignore[no-untyped-def]
    from eval.gate import check, load_floors

    problems = check(smoke_run.metrics, load_floors("subset"))
    assert not problems, problems
    # and the gate names metric, value and floor when one drops
    broken = dict(smoke_run.metrics, **{"recall@5": -1.0})
    assert any(p.startswith("recall@5: -1.0000 is below the floor") for p in check(broken, load_floors("subset")))


@pytest.mark.slow
def test_report_folder(smoke_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from eval.report import write_report

    folder = write_report(smoke_run, tmp_path / "report")
    for name in ("report.md", "report.html", "metrics.json", "recall_at_k.svg", "per_document.svg",
                 "per_language.svg", "latency.svg", "results-ours.jsonl", "results-bm25.jsonl"):
        assert (folder / name).is_file(), name
    for svg in folder.glob("*.svg"):
        root = ET.fromstring(svg.read_text())  # well-formed
        assert root.tag.endswith("svg") and len(list(root.iter())) > 5
    page = (folder / "report.html").read_text()
    assert page.count("<svg") == 4 and "Failures of our system" in page
    md = (folder / "report.md").read_text()
    assert "| recall@5 |" in md and "![recall_at_k.svg](recall_at_k.svg)" in md
    failures = json.loads((folder / "metrics.json").read_text())
    assert failures["n"] == smoke_run.metrics["n"]
