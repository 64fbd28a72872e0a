"""The CI gate: run the smoke dataset on our system and fail when a metric drops below its floor.

    python -m eval.gate [--dataset eval/datasets/smoke.jsonl] [--profile full|subset] [--set-floors]

Runs OUR system only (no baselines: fast) against the knowledge base of the
settings (KB_DATA_DIR), compares each metric with eval/floors.json and exits 1,
naming metric, value and floor, when one is below its floor (or a latency above
its ceiling); 0 when all hold. Floors come in profiles: "full" for the
full-corpus knowledge base (the default, what `.ci/run` uses), "subset" for the
test subset knowledge base (tests/conftest.py SUBSET, used by tests/test_eval.py).

`--set-floors` measures and writes the profile's floors: each quality metric's
measured value minus MARGIN (not below 0), each latency's measured value times
LATENCY_FACTOR (at least LATENCY_MIN_MS), so the gate catches regressions, not noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

HERE = Path(__file__).resolve().parent
FLOORS_FILE = HERE / "floors.json"
SMOKE = HERE / "datasets" / "smoke.jsonl"
MARGIN = 0.1
LATENCY_FACTOR = 4.0
LATENCY_MIN_MS = 1000.0
GATED = (
    "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "citation_precision", "citation_recall", "faithfulness",
    "key_fact_recall", "scenario_accuracy", "abstention_precision", "abstention_recall",
)
CEILINGS = ("latency_ms_p95", "answerable_declined_rate")


def load_floors(profile: str, path: Path = FLOORS_FILE) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if profile not in data["profiles"]:
        raise KeyError(f"no floors for profile {profile!r} in {path}; have {', '.join(data['profiles'])}")
    return data["profiles"][profile]


def check(metrics: dict[str, Any], floors: dict[str, Any]) -> list[str]:
    """The violations, one line each naming metric, value and floor (or ceiling); empty when all hold."""
    problems = []
    for key, floor in floors.get("floors", {}).items():
        value = metrics.get(key)
        if value is None:
            problems.append(f"{key}: not measured (floor {floor})")
        elif value < floor:
            problems.append(f"{key}: {value:.4f} is below the floor {floor:.4f}")
    for key, ceiling in floors.get("ceilings", {}).items():
        value = metrics.get(key)
        if value is not None and value > ceiling:
            problems.append(f"{key}: {value:.4f} is above the ceiling {ceiling:.4f}")
    return problems


def derive_floors(metrics: dict[str, Any]) -> dict[str, Any]:
    """Floors from measured values: quality minus MARGIN, latency times LATENCY_FACTOR, declines plus MARGIN."""
    floors = {k: round(max(0.0, metrics[k] - MARGIN), 3) for k in GATED if metrics.get(k) is not None}
    ceilings = {}
    if metrics.get("latency_ms_p95") is not None:
        ceilings["latency_ms_p95"] = round(max(LATENCY_MIN_MS, metrics["latency_ms_p95"] * LATENCY_FACTOR))
    if metrics.get("answerable_declined_rate") is not None:
        ceilings["answerable_declined_rate"] = round(min(1.0, metrics["answerable_declined_rate"] + MARGIN), 3)
    return {"floors": floors, "ceilings": ceilings}


def measure(dataset: Path = SMOKE, kb: Any = None) -> dict[str, Any]:
    """Our system's metrics on `dataset` (no baselines), against `kb` or the settings' knowledge base."""
    from eval.runner import run_file
    from kb.knowledge_base import KnowledgeBase
    from kb.settings import get_settings

    kb = kb or KnowledgeBase(get_settings())
    return run_file(kb, dataset, ["ours"], progress=sys.stderr.isatty()).metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=SMOKE)
    parser.add_argument("--profile", default=os.environ.get("KB_EVAL_FLOORS", "full"))
    parser.add_argument("--floors", type=Path, default=FLOORS_FILE)
    parser.add_argument("--set-floors", action="store_true", help="measure and write this profile's floors")
    args = parser.parse_args(argv)

    from kb.knowledge_base import KnowledgeBase
    from kb.settings import get_settings

    kb = KnowledgeBase(get_settings())
    if not kb.is_built():
        print(f"gate: the knowledge base in {kb.settings.data_dir} is not built", file=sys.stderr)
        return 2
    metrics = measure(args.dataset, kb)
    summary = {k: metrics.get(k) for k in (*GATED, *CEILINGS)}
    if args.set_floors:
        data = json.loads(args.floors.read_text()) if args.floors.exists() else {"profiles": {}}
        entry = derive_floors(metrics)
        entry["measured"] = summary
        entry["measured_on"] = {
            "date": date.today().isoformat(),
            "dataset": args.dataset.name,
            "passages": kb.store.count(),
            "data_dir": str(kb.settings.data_dir),
        }
        data.setdefault("profiles", {})[args.profile] = entry
        args.floors.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        print(f"gate: floors for profile {args.profile!r} written to {args.floors}")
        return 0
    problems = check(metrics, load_floors(args.profile, args.floors))
    for key, value in summary.items():
        print(f"  {key:26s} {'–' if value is None else f'{value:.4f}'}", file=sys.stderr)
    if problems:
        for line in problems:
            print(f"gate FAILED: {line}")
        return 1
    print(f"gate passed: {len(load_floors(args.profile, args.floors).get('floors', {}))} floors hold on {args.dataset.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
