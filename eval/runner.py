"""Run a dataset over the selected systems and compute the metrics JSON.

The top-level figures are OUR system's (DESIGN's `kb eval` keys, plus the answer
metrics of eval/metrics.py), with per_language, per_document and per_scenario
breakdowns; "systems" holds every system's figures (ours included) for the
side-by-side comparison; "baselines" holds the trivial systems' figures on the same
questions (always answer, always decline, the majority scenario, and BM25 / dense /
naive llama-index when they ran), each also per language, with "strongest" naming,
per metric, the best of them (what eval/gate.py floors must exceed) and
"measured_on" saying where they were measured; "support" records how citation
support was decided and its agreement with the hand labels. A rich progress bar
goes to stderr while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.dataset import EvalQuestion, load_dataset
from eval.metrics import BASELINES_FOR, QuestionResult, full_metrics, recall_curve, strongest_baselines, trivial_baselines
from eval.systems import BASELINE_SYSTEMS, SYSTEMS, make_system
from kb.knowledge_base import KnowledgeBase

DEFAULT_SYSTEMS = list(SYSTEMS)


@dataclass
class RunResult:
    """Everything a run produced: the metrics object and each system's per-question results."""

    dataset: str
    metrics: dict[str, Any]
    results: dict[str, list[QuestionResult]] = field(default_factory=dict)


def support_info() -> dict[str, Any]:
    from eval import support

    labels = support.load_labels()
    agreement = support.agreement(labels)
    return {
        "method": "weighted share of the sentence's stemmed content words (numbers x3) found in the cited passages",
        "threshold": support.SUPPORT_THRESHOLD,
        "labels": str(support.LABELS_FILE.name),
        "agreement_accuracy": round(agreement.accuracy, 3),
        "agreement_kappa": round(agreement.kappa, 3),
        "n_labels": agreement.n,
    }


def run(
    kb: KnowledgeBase,
    questions: Sequence[EvalQuestion],
    systems: Sequence[str] | None = None,
    dataset: str = "",
    progress: bool = True,
) -> RunResult:
    """Every question through every selected system; ours first. Progress on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    names = list(dict.fromkeys(systems or DEFAULT_SYSTEMS))
    if "ours" in names:
        names.remove("ours")
    names.insert(0, "ours")  # the top-level figures are ours: always run it
    built = [make_system(name, kb) for name in names]
    console = Console(stderr=True)
    results: dict[str, list[QuestionResult]] = {}
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=False,
    ) as bar:
        def log(message: str) -> None:
            if progress:
                bar.console.print(message, highlight=False)

        for system in built:
            task = bar.add_task(system.name, total=len(questions))
            system.prepare(log)
            out: list[QuestionResult] = []
            for q in questions:
                out.append(system.run(q))
                bar.advance(task)
            results[system.name] = out
            errors = [r for r in out if r.error]
            if errors:
                log(f"[yellow]{system.name}: {len(errors)} question(s) failed, e.g. {errors[0].id}: {errors[0].error}")
    metrics = full_metrics(results["ours"])
    metrics["systems"] = {}
    for name, out in results.items():
        system_metrics = full_metrics(out)
        system_metrics["recall_curve"] = recall_curve(out)
        metrics["systems"][name] = system_metrics
    metrics["baselines"] = baselines(kb, results, dataset)
    metrics["dataset"] = dataset
    metrics["support"] = support_info()
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return RunResult(dataset=dataset, metrics=metrics, results=results)


BASELINE_KEYS = (*BASELINES_FOR, "answer_recall_gap@5", "key_fact_body_n", "latency_ms_p50", "latency_ms_p95")


def baselines(kb: KnowledgeBase, results: dict[str, list[QuestionResult]], dataset: str = "") -> dict[str, Any]:
    """The trivial systems' figures on the questions of this run, per language too, and the strongest per metric."""
    questions = next(iter(results.values()))
    out: dict[str, Any] = dict(trivial_baselines(questions))
    for name in BASELINE_SYSTEMS:
        if name in results:
            m = full_metrics(results[name])
            entry = {k: m.get(k) for k in BASELINE_KEYS if k in m}
            entry["per_language"] = {
                lang: {k: lm.get(k) for k in BASELINE_KEYS if k in lm} for lang, lm in m["per_language"].items()
            }
            out[name] = entry
    out["strongest"] = strongest_baselines(out)
    out["measured_on"] = {
        "dataset": dataset,
        "questions": len(questions),
        "passages": kb.store.count(),
        "data_dir": str(kb.settings.data_dir),
        "systems": [n for n in BASELINE_SYSTEMS if n in results],
        "not_run": [n for n in BASELINE_SYSTEMS if n not in results],
    }
    return out


def run_file(kb: KnowledgeBase, path: Path, systems: Sequence[str] | None = None, progress: bool = True) -> RunResult:
    return run(kb, load_dataset(path), systems, dataset=str(path), progress=progress)


def failures(result: RunResult, system: str = "ours", limit: int | None = None) -> list[dict[str, Any]]:
    """Where a system goes wrong, one entry per question: what failed, the gold, and what it returned."""
    out = []
    for r in result.results.get(system, []):
        problems = []
        if r.error:
            problems.append(f"error: {r.error}")
        if r.answerable and r.gold_refs and r.retrieved_refs is not None and (r.recall(5) or 0.0) < 1.0:
            problems.append("gold not in top 5" if not r.recall(5) else "some gold not in top 5")
        if r.abstained is not None:
            if r.answerable and r.abstained:
                problems.append("declined an answerable question")
            if not r.answerable and not r.abstained:
                problems.append("answered an unanswerable question")
        if r.scenario and r.predicted_scenario and r.predicted_scenario != r.scenario:
            problems.append(f"scenario inferred {r.predicted_scenario}, gold {r.scenario}")
        kf = r.key_fact_recall()
        if kf is not None and kf < 1.0 and not r.abstained:
            problems.append("key facts missing")
        if r.citation_precision is not None and r.citation_precision < 1.0:
            problems.append("unsupported citation")
        if problems:
            out.append(
                {
                    "id": r.id,
                    "question": r.question,
                    "language": r.language,
                    "scenario": r.scenario,
                    "problems": problems,
                    "gold_refs": r.gold_refs,
                    "key_facts": r.key_facts,
                    "retrieved_top5": list(dict.fromkeys(r.retrieved_refs or []))[:5],
                    "cited_refs": r.cited_refs,
                    "abstained": r.abstained,
                    "predicted_scenario": r.predicted_scenario,
                    "answer": (r.answer_text or "")[:600],
                }
            )
    return out[:limit] if limit else out
