"""Benchmark: where the time of one `ask` goes, stage by stage, so the next speed-up is aimed.

    python -m eval.bench_breakdown [--dataset eval/datasets/tune.jsonl] [--questions 100] [--repeat 2]

Runs `ask` in process on the knowledge base in KB_DATA_DIR for the first
--questions questions of the dataset, with the stage timer of `kb.timing` on.
Stages (exclusive times, they add up to the call): scenario (router), embed
(the query vector), dense (Chroma), bm25 (BM25 and the cross-language BM25),
fusion (RRF), fetch (the fused passages from the store), provisions (named and
cited provisions, language swap), abstention (signals and the decline model),
compose (the extractive answer); "other" is the rest of the call.

Pass 1 embeds every question afresh (cold cache); each further --repeat pass
asks the same questions again, so the query-vector cache answers `embed`.
Prints mean and p95 milliseconds per stage and its share of the mean call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


from eval.dataset import load_dataset
from kb.knowledge_base import KnowledgeBase
from kb.settings import REPO_ROOT, get_settings
from kb.timing import record

STAGES = ("scenario", "embed", "dense", "bm25", "fusion", "fetch", "provisions", "abstention", "compose", "other")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def breakdown(kb: KnowledgeBase, questions: list[str]) -> dict[str, dict[str, float]]:
    """Per stage: mean and p95 milliseconds over the questions, and share of the mean call."""
    samples: dict[str, list[float]] = {name: [] for name in (*STAGES, "total")}
    for question in questions:
        started = time.perf_counter()
        with record() as times:
            kb.ask(question)
        total = time.perf_counter() - started
        for name in STAGES[:-1]:
            samples[name].append(times.get(name, 0.0))
        samples["other"].append(max(total - sum(times.values()), 0.0))
        samples["total"].append(total)
    mean_total = statistics.fmean(samples["total"])
    return {
        name: {
            "mean_ms": round(1000 * statistics.fmean(values), 2),
            "p95_ms": round(1000 * _p95(values), 2),
            "share": round(statistics.fmean(values) / mean_total, 3),
        }
        for name, values in samples.items()
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO_ROOT / "eval" / "datasets" / "tune.jsonl")
    parser.add_argument("--questions", type=int, default=100, help="Questions per pass (the dataset's first ones).")
    parser.add_argument("--repeat", type=int, default=2, help="Passes: the first with a cold query-vector cache.")
    args = parser.parse_args(argv)
    questions = [q.question for q in load_dataset(args.dataset)][: args.questions]

    kb = KnowledgeBase(get_settings())
    started = time.perf_counter()
    kb.ask("Hvad er en idriftsætter?")  # load models and indexes once, as a worker does at startup
    load_s = time.perf_counter() - started
    result: dict[str, object] = {"questions": len(questions), "load_s": round(load_s, 2), "passes": {}}
    for n in range(1, max(args.repeat, 1) + 1):
        name = "cold" if n == 1 else f"warm{n - 1}"
        figures = breakdown(kb, questions)
        result["passes"][name] = figures  # type: ignore[index]
        print(f"pass {name}: {len(questions)} questions (load {load_s:.1f} s)")
        print(f"  {'stage':12s} {'mean ms':>9s} {'p95 ms':>9s} {'share':>7s}")
        for stage, f in figures.items():
            print(f"  {stage:12s} {f['mean_ms']:9.2f} {f['p95_ms']:9.2f} {100 * f['share']:6.1f}%")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
