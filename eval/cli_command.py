"""The body of `kb eval --dataset FILE [--systems …] [--json] [--report DIR]` (kb/cli.py wires the options).

stdout gets only the metrics JSON with --json (a short table otherwise); the
progress bar, notices and errors go to stderr. Exit code 0 on success, 2 when
the dataset, the systems or the knowledge base are not usable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


SUMMARY_KEYS = (
    "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_recall@5", "answer_recall_gap@5",
    "cited_gold_precision", "key_fact_recall_body", "key_fact_recall", "scenario_accuracy", "abstention_precision",
    "abstention_recall", "abstention_accuracy", "answerable_declined_rate", "citation_precision", "citation_recall",
    "faithfulness", "latency_ms_p50", "latency_ms_p95", "errors",
)


def _print_table(metrics: dict) -> None:  # type: ignore[type-arg]
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"kb eval: {metrics.get('dataset', '')} ({metrics['n']} questions)")
    table.add_column("metric")
    systems = metrics["systems"]
    for name in systems:
        table.add_column(name, justify="right")
    table.add_column("strongest trivial baseline")
    strongest = metrics.get("baselines", {}).get("strongest", {})
    for key in SUMMARY_KEYS:
        cells = []
        for name in systems:
            value = systems[name].get(key)
            cells.append("–" if value is None else (f"{value:.0f}" if key.startswith("latency") else f"{value:.3f}"))
        base = strongest.get(key)
        cells.append(f"{base['value']:.3f} ({base['baseline']})" if base else "")
        table.add_row(key, *cells)
    Console().print(table)


def run_eval(dataset: Path, systems: list[str] | None, as_json: bool, report_dir: Path | None) -> int:
    """Run `dataset` over `systems` (default: all) on the knowledge base of the settings; exit code."""
    from rich.console import Console

    from eval.dataset import DatasetError, load_dataset
    from eval.systems import SYSTEMS
    from kb.errors import NotBuiltError
    from kb.knowledge_base import KnowledgeBase
    from kb.settings import get_settings

    err = Console(stderr=True)

    def fail(message: str) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return 2

    unknown = [s for s in systems or [] if s not in SYSTEMS]
    if unknown:
        return fail(f"unknown system(s) {', '.join(unknown)}; expected from {', '.join(SYSTEMS)}")
    try:
        questions = load_dataset(Path(dataset))
    except DatasetError as exc:
        return fail(str(exc))
    kb = KnowledgeBase(get_settings())
    if not kb.is_built():
        return fail(f"the knowledge base in {kb.settings.data_dir} is not built: run `kb ingest` first")
    from eval.runner import run

    try:
        result = run(kb, questions, systems, dataset=str(dataset), progress=True)
    except NotBuiltError as exc:
        return fail(f"the knowledge base is not built ({exc}): run `kb ingest` first")
    if report_dir is not None:
        from eval.report import write_report

        written = write_report(result, Path(report_dir))
        err.print(f"report written: {written}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(result.metrics, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_table(result.metrics)
    return 0
