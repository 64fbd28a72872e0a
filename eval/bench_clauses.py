"""Benchmark: the clause finder's two costly calls, in process, so their speed-ups have figures.

    python -m eval.bench_clauses [--repeat 3]

On the knowledge base in KB_DATA_DIR:
- search: the clause finder's search (50 candidates) for ten procurement queries, without and with each
  scenario's filter (which searches within the scenario's profile);
- clause view: `GET /api/clauses/{ref}`'s work for ten provisions and clauses (the passages of the reference,
  cited by, and the most similar provisions in other documents).
Query vectors and caches are warmed first, as in a running worker; the figures are the warm cost.
Prints p50/p95/max milliseconds per call, and a JSON line (with p99 and mean too).
"""

from __future__ import annotations

import argparse
import json
import time


from eval.metrics import latency_summary
from kb.clauses import clause_view
from kb.knowledge_base import KnowledgeBase
from kb.vocabulary import SCENARIO_IDS
from kb.settings import get_settings

QUERIES = [
    "databehandleraftale", "innovationspartnerskab", "CE-mærkning", "logs deployer", "klinisk afprøvning",
    "tærskelværdi", "ansvar for fejl", "markedsdialog", "cybersikkerhed leverandør", "konsekvensanalyse",
]  # fmt: skip
REFS = [
    "ai-act:art-26", "ai-act:art-27", "gdpr:art-28", "gdpr:art-35", "mdr:art-20", "udbudsloven:§-73",
    "erst-it-rammeaftale:section-16", "mcc-ai-high-risk:section-5", "mcc-ai-high-risk:section-7", "nis2:art-21",
]  # fmt: skip


def _figures(samples: list[float]) -> dict[str, float]:
    """Count, p50/p95/p99/mean (`eval.metrics.latency_summary`) and max in milliseconds of samples in seconds."""
    return {"n": len(samples), **latency_summary(samples), "max_ms": round(1000 * max(samples), 1)}


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="Timed passes over the queries and references.")
    args = parser.parse_args(argv)
    kb = KnowledgeBase(get_settings())
    documents = kb.catalog["documents"]
    refs = [ref for ref in REFS if ref.split(":")[0] in documents and kb.passages_for_ref(ref)]
    profiles = {s: kb.scenario_profile(s) for s in SCENARIO_IDS}
    for query in QUERIES:  # warm: query vectors, keyword index, profile vectors, passage cache
        kb.search(query, k=50)
        for profile in profiles.values():
            kb.search(query, k=50, within=profile)
    for ref in refs:
        clause_view(kb, ref, "da", 5)
    plain: list[float] = []
    within: list[float] = []
    views: list[float] = []
    for _ in range(max(args.repeat, 1)):
        for query in QUERIES:
            plain.append(_timed(lambda: kb.search(query, k=50)))  # noqa: B023
            for profile in profiles.values():
                within.append(_timed(lambda: kb.search(query, k=50, within=profile)))  # noqa: B023
        for ref in refs:
            views.append(_timed(lambda: clause_view(kb, ref, "da", 5)))  # noqa: B023
    result: dict[str, object] = {
        "search": _figures(plain),
        "search_within_scenario": _figures(within),
        "clause_view": _figures(views),
        "refs": refs,
    }
    for name in ("search", "search_within_scenario", "clause_view"):
        f = result[name]
        print(f"{name:24s} n={f['n']:4d}  p50 {f['p50_ms']:7.1f} ms  p95 {f['p95_ms']:7.1f} ms  max {f['max_ms']:7.1f} ms")  # type: ignore[index]
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
