"""Benchmark: building a contract draft, in process, warm, as a running worker does.

    python -m eval.bench_contract [--repeat 5]

On the knowledge base in KB_DATA_DIR, for each scenario with no answers (every variant kept, open) and with one
full set of answers: the draft as JSON (`build_contract`: rules, conditions, the clauses' passages and the
provisions' first passages), and rendered as Markdown and DOCX. The baseline is the same rules evaluated without the
knowledge base (no quoting, no passages): what the rules alone cost. The first build after start (cold caches)
is printed too. Prints p50/p95/max milliseconds per call, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any


from eval.metrics import latency_summary
from kb.contract import build_contract, contract_docx, contract_markdown

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

CASES: list[tuple[str, dict[str, str]]] = [
    ("behov", {}),
    ("behov", {"medical_purpose": "yes", "device_class": "iib", "health_data": "in_house"}),
    ("prototype", {}),
    ("prototype", {"high_risk": "no", "health_data": "joint_controllers"}),
    ("demo", {}),
    ("demo", {"medical_purpose": "no", "high_risk": "annex_iii", "health_data": "vendor_processor"}),
    ("loesning", {}),
    ("loesning", {"high_risk": "annex_i", "health_data": "vendor_processor", "interacts_with_persons": "no"}),
]


def _figures(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), **latency_summary(samples), "max_ms": round(1000 * max(samples), 1)}


def _timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out


def main(argv: list[str] | None = None, kb: KnowledgeBase | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="Timed passes over the cases.")
    args = parser.parse_args(argv)
    if kb is None:
        from kb.knowledge_base import KnowledgeBase
        from kb.settings import get_settings

        kb = KnowledgeBase(get_settings())
    cold, _ = _timed(lambda: build_contract(*CASES[-1], "da", kb=kb))
    for scenario, answers in CASES:  # warm: passage cache, keyword index, python-docx's template
        contract_docx(build_contract(scenario, answers, "en", kb=kb))
    rules_only: list[float] = []
    drafts: list[float] = []
    markdown: list[float] = []
    docx: list[float] = []
    quoted = 0
    for _ in range(max(args.repeat, 1)):
        for scenario, answers in CASES:
            rules_only.append(_timed(lambda: build_contract(scenario, answers, "da"))[0])  # noqa: B023
            seconds, draft = _timed(lambda: build_contract(scenario, answers, "da", kb=kb))  # noqa: B023
            drafts.append(seconds)
            quoted = max(quoted, sum(len(c["passages"]) for s in draft["sections"] for c in s["clauses"]))
            markdown.append(_timed(lambda: contract_markdown(draft))[0])  # noqa: B023
            docx.append(_timed(lambda: contract_docx(draft))[0])  # noqa: B023
    result: dict[str, Any] = {
        "first_build_ms": round(1000 * cold, 1),
        "rules_only": _figures(rules_only),
        "draft": _figures(drafts),
        "markdown": _figures(markdown),
        "docx": _figures(docx),
        "cases": len(CASES),
        "most_passages_quoted": quoted,
    }
    print(f"{'first build (cold)':24s} {result['first_build_ms']:7.1f} ms")
    for name in ("rules_only", "draft", "markdown", "docx"):
        f = result[name]
        print(f"{name:24s} n={f['n']:4d}  p50 {f['p50_ms']:7.1f} ms  p95 {f['p95_ms']:7.1f} ms  max {f['max_ms']:7.1f} ms")
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
