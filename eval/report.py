"""The evaluation report: a folder with report.md, report.html, SVG plots, metrics.json and per-question results.

Plots (plain SVG, no plotting library; the HTML embeds them inline so it opens
anywhere): recall@k curves per system, recall@5 per document and per language
for each system, and a latency histogram per system. Then the failures of our
system (question, gold, what we returned), so a person sees where it goes wrong.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.runner import RunResult, failures

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
TABLE_KEYS = (
    "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_recall@5", "answer_recall_gap@5",
    "cited_gold_precision", "key_fact_recall_body", "key_fact_body_n", "key_fact_recall", "scenario_accuracy",
    "abstention_precision", "abstention_recall", "abstention_accuracy", "answerable_declined_rate",
    "citation_precision", "citation_recall", "faithfulness", "latency_ms_p50", "latency_ms_p95", "errors",
)
GROUP_KEYS = ("n", "recall@1", "recall@5", "recall@10", "mrr@10", "answer_recall@5", "cited_gold_precision",
              "key_fact_recall_body", "scenario_accuracy", "abstention_recall", "latency_ms_p50")


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}" if key.startswith("latency") else f"{value:.3f}"
    return str(value)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


# --- SVG -----------------------------------------------------------------------------------


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12">'
        f'<rect width="{width}" height="{height}" fill="white"/>'
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{_esc(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        yy = y + i * 16
        out.append(f'<rect x="{x}" y="{yy - 9}" width="12" height="10" fill="{COLORS[i % len(COLORS)]}"/>')
        out.append(f'<text x="{x + 16}" y="{yy}">{_esc(name)}</text>')
    return out


def recall_curve_svg(curves: dict[str, list[float | None]]) -> str:
    """Recall@k for k = 1..10, one line per system."""
    w, h, left, right, top, bottom = 640, 360, 50, 170, 30, 40
    pw, ph = w - left - right, h - top - bottom
    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>']
    for i in range(0, 11, 2):
        y = top + ph - ph * i / 10
        body.append(f'<line x1="{left}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{i / 10:.1f}</text>')
    for k in range(1, 11):
        x = left + pw * (k - 1) / 9
        body.append(f'<text x="{x}" y="{top + ph + 16}" text-anchor="middle">{k}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{h - 6}" text-anchor="middle">k (distinct references)</text>')
    names = list(curves)
    for i, name in enumerate(names):
        points = [
            (left + pw * (k - 1) / 9, top + ph - ph * v) for k, v in enumerate(curves[name], 1) if v is not None
        ]
        if not points:
            continue
        color = COLORS[i % len(COLORS)]
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>'
        )
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
    body.extend(_legend(names, left + pw + 15, top + 15))
    return _svg(w, h, body, "Recall@k per system")


def grouped_bars_svg(groups: dict[str, dict[str, float | None]], title: str, metric: str) -> str:
    """Horizontal grouped bars: one group per row (document, language), one bar per system, value 0..1."""
    names = list(dict.fromkeys(n for g in groups.values() for n in g))
    bar, gap = 11, 10
    left, right, top = 190, 170, 30
    pw = 360
    h = top + len(groups) * (len(names) * bar + gap) + 40
    w = left + pw + right
    body = []
    for i in range(0, 11, 2):
        x = left + pw * i / 10
        body.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{h - 35}" stroke="#ddd"/>')
        body.append(f'<text x="{x}" y="{h - 20}" text-anchor="middle">{i / 10:.1f}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{h - 5}" text-anchor="middle">{_esc(metric)}</text>')
    y = top
    for group, values in groups.items():
        body.append(
            f'<text x="{left - 8}" y="{y + len(names) * bar / 2 + 4}" text-anchor="end">{_esc(group)}</text>'
        )
        for i, name in enumerate(names):
            value = values.get(name)
            if value is not None:
                body.append(
                    f'<rect x="{left}" y="{y}" width="{pw * value:.1f}" height="{bar - 2}" '
                    f'fill="{COLORS[i % len(COLORS)]}"><title>{_esc(name)}: {value:.3f}</title></rect>'
                )
                body.append(f'<text x="{left + pw * value + 3:.1f}" y="{y + bar - 3}" font-size="9">{value:.2f}</text>')
            y += bar
        y += gap
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - 35}" stroke="black"/>')
    body.extend(_legend(names, left + pw + 15, top + 15))
    return _svg(w, h, body, title)


def latency_svg(latencies: dict[str, list[float]]) -> str:
    """A histogram of latency per system (log-spaced bins), one small panel per system."""
    names = [n for n, v in latencies.items() if v]
    everything = [v for n in names for v in latencies[n] if v > 0]
    w, left, right, panel, top = 640, 150, 30, 70, 30
    h = top + max(len(names), 1) * (panel + 10) + 40
    body = []
    if not everything:
        return _svg(w, h, body, "Latency (no measurements)")
    lo, hi = math.log10(max(min(everything), 0.1)), math.log10(max(everything)) + 1e-9
    bins = 20
    span = max(hi - lo, 1e-6)
    pw = w - left - right
    for i, name in enumerate(names):
        counts = [0] * bins
        for v in latencies[name]:
            b = min(int((math.log10(max(v, 0.1)) - lo) / span * bins), bins - 1)
            counts[max(b, 0)] += 1
        peak = max(counts) or 1
        y0 = top + i * (panel + 10)
        body.append(f'<text x="{left - 8}" y="{y0 + panel / 2 + 4}" text-anchor="end">{_esc(name)}</text>')
        body.append(f'<line x1="{left}" y1="{y0 + panel}" x2="{left + pw}" y2="{y0 + panel}" stroke="#999"/>')
        for b, c in enumerate(counts):
            if c:
                bh = panel * c / peak
                body.append(
                    f'<rect x="{left + pw * b / bins:.1f}" y="{y0 + panel - bh:.1f}" width="{pw / bins - 1:.1f}" '
                    f'height="{bh:.1f}" fill="{COLORS[i % len(COLORS)]}"><title>{c}</title></rect>'
                )
    axis_y = top + len(names) * (panel + 10)
    for t in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = m * 10**t
            if lo <= math.log10(v) <= hi:
                x = left + pw * (math.log10(v) - lo) / span
                body.append(f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="middle">{v:g}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{h - 6}" text-anchor="middle">milliseconds per question (log scale)</text>')
    return _svg(w, h, body, "Latency per question")


def line_chart_svg(
    series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str, log_x: bool = True
) -> str:
    """Lines of (x, y) points, one per series, x on a log scale by default (the scaling curves of eval/bench_scale.py)."""
    w, h, left, right, top, bottom = 640, 360, 60, 200, 30, 45
    pw, ph = w - left - right, h - top - bottom
    points = [pt for pts in series.values() for pt in pts]
    if not points:
        return _svg(w, h, [], f"{title} (no measurements)")
    fx = (lambda v: math.log10(max(v, 1e-9))) if log_x else (lambda v: v)
    x_lo, x_hi = min(fx(x) for x, _ in points), max(fx(x) for x, _ in points)
    x_span = max(x_hi - x_lo, 1e-9)
    y_hi = max(y for _, y in points) * 1.1 or 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        return left + pw * (fx(x) - x_lo) / x_span, top + ph - ph * y / y_hi

    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>']
    for i in range(6):
        y = top + ph - ph * i / 5
        body.append(f'<line x1="{left}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{y_hi * i / 5:.3g}</text>')
    for x in sorted({x for x, _ in points}):
        body.append(f'<text x="{at(x, 0)[0]:.1f}" y="{top + ph + 16}" text-anchor="middle">{x:,.0f}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">{_esc(x_label)}</text>')
    body.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 {top + ph / 2})">'
                f"{_esc(y_label)}</text>")
    names = list(series)
    for i, name in enumerate(names):
        xy = [at(x, y) for x, y in sorted(series[name])]
        color = COLORS[i % len(COLORS)]
        if len(xy) > 1:
            body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                        + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in xy)
    body.extend(_legend(names, left + pw + 15, top + 15))
    return _svg(w, h, body, title)


# --- the report ------------------------------------------------------------------------------


def _plots(result: RunResult) -> dict[str, str]:
    systems = result.metrics["systems"]
    per_doc: dict[str, dict[str, float | None]] = {}
    per_lang: dict[str, dict[str, float | None]] = {}
    for name, m in systems.items():
        for doc, dm in m["per_document"].items():
            if doc != "unanswerable":
                per_doc.setdefault(doc, {})[name] = dm.get("recall@5")
        for lang, lm in m["per_language"].items():
            per_lang.setdefault(lang, {})[name] = lm.get("recall@5")
    return {
        "recall_at_k.svg": recall_curve_svg({n: m["recall_curve"] for n, m in systems.items()}),
        "per_document.svg": grouped_bars_svg(dict(sorted(per_doc.items())), "Recall@5 per document", "recall@5"),
        "per_language.svg": grouped_bars_svg(per_lang, "Recall@5 per language", "recall@5"),
        "latency.svg": latency_svg(
            {n: [r.latency_ms for r in rs if r.latency_ms is not None] for n, rs in result.results.items()}
        ),
    }


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _tables(metrics: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table the report shows, shared by Markdown and HTML."""
    systems = metrics["systems"]
    names = list(systems)
    strongest = metrics.get("baselines", {}).get("strongest", {})

    def baseline_cell(key: str) -> str:
        base = strongest.get(key)
        return f"{_fmt(base['value'], key)} ({base['baseline']})" if base else "–"

    out = [("Systems side by side", ["metric", *names, "strongest trivial baseline"],
            [[k, *(_fmt(systems[n].get(k), k) for n in names), baseline_cell(k)] for k in TABLE_KEYS])]
    trivial = metrics.get("baselines", {})
    rows = []
    for name in ("always_answer", "always_decline", "majority_scenario"):
        for key, value in trivial.get(name, {}).items():
            if key != "per_language":
                rows.append([name, key, _fmt(value, key)])
    out.append(("Trivial baselines that need no knowledge base", ["baseline", "metric", "value"], rows))
    for title, key in (("Ours per language", "per_language"), ("Ours per document", "per_document"),
                       ("Ours per scenario", "per_scenario")):
        groups = metrics[key]
        out.append((title, [key.split("_", 1)[1], *GROUP_KEYS],
                    [[g, *(_fmt(groups[g].get(k), k) for k in GROUP_KEYS)] for g in groups]))
    return out


def _failure_line(f: dict[str, Any]) -> list[str]:
    return [
        f["id"],
        f["language"],
        f["question"],
        "; ".join(f["problems"]),
        ", ".join(f["gold_refs"]) or "(unanswerable)",
        ", ".join(f["retrieved_top5"]),
        ", ".join(dict.fromkeys(f["cited_refs"])) or ("(declined)" if f["abstained"] else "–"),
    ]


FAILURE_HEADER = ["id", "lang", "question", "what went wrong", "gold", "our top 5", "we cited"]


def write_report(result: RunResult, folder: Path) -> Path:
    """Write report.md, report.html, the SVG plots, metrics.json and results-<system>.jsonl; the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics = result.metrics
    plots = _plots(result)
    for name, svg in plots.items():
        (folder / name).write_text(svg, encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    for name, rs in result.results.items():
        with (folder / f"results-{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rs:
                fh.write(json.dumps(r.as_dict(), ensure_ascii=False) + "\n")
    fails = failures(result)
    support = metrics.get("support", {})
    where = metrics.get("baselines", {}).get("measured_on", {})
    intro = (
        f"Dataset `{result.dataset}`: {metrics['n']} questions; systems: {', '.join(metrics['systems'])}; "
        f"measured on the knowledge base in {where.get('data_dir')} ({where.get('passages')} passages); "
        f"baselines not run: {', '.join(where.get('not_run', [])) or 'none'}; "
        f"{metrics.get('seconds', '?')} s. The top-level figures are our system's. Metric definitions: `eval/metrics.py`; "
        f"citation support: `eval/support.py` ({support.get('method', '')}, threshold {support.get('threshold')}; "
        f"agreement with {support.get('n_labels')} hand labels: accuracy {support.get('agreement_accuracy')}, "
        f"Cohen's kappa {support.get('agreement_kappa')})."
    )
    tables = _tables(metrics)

    md = ["# Evaluation report", "", intro, ""]
    for title, header, rows in tables[:1]:
        md += [f"## {title}", "", _md_table(header, rows), ""]
    md += ["## Plots", ""] + [f"![{n}]({n})" for n in plots] + [""]
    for title, header, rows in tables[1:]:
        md += [f"## {title}", "", _md_table(header, rows), ""]
    md += [f"## Failures of our system ({len(fails)} of {metrics['n']} questions)", ""]
    md += [_md_table(FAILURE_HEADER, [_failure_line(f) for f in fails]) if fails else "None.", ""]
    (folder / "report.md").write_text("\n".join(md), encoding="utf-8")

    def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        head = "".join(f"<th>{_esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Evaluation report</title><style>"
        "body{font-family:Helvetica,Arial,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
        "vertical-align:top}th{background:#f3f3f3}.plots{display:flex;flex-wrap:wrap;gap:1em}"
        "details{margin:.3em 0}pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em}</style></head><body>",
        "<h1>Evaluation report</h1>",
        f"<p>{_esc(intro)}</p>",
    ]
    title, header, rows = tables[0]
    parts += [f"<h2>{_esc(title)}</h2>", html_table(header, rows), "<h2>Plots</h2><div class='plots'>"]
    parts += [f"<figure>{svg}<figcaption>{_esc(n)}</figcaption></figure>" for n, svg in plots.items()]
    parts.append("</div>")
    for title, header, rows in tables[1:]:
        parts += [f"<h2>{_esc(title)}</h2>", html_table(header, rows)]
    parts.append(f"<h2>Failures of our system ({len(fails)} of {metrics['n']} questions)</h2>")
    if fails:
        parts.append(html_table(FAILURE_HEADER, [_failure_line(f) for f in fails]))
        parts.append("<h3>The answers behind the failures</h3>")
        for f in fails:
            parts.append(
                f"<details><summary>{_esc(f['id'])}: {_esc(f['question'])}</summary><pre>{_esc(f['answer'])}</pre></details>"
            )
    else:
        parts.append("<p>None.</p>")
    parts.append("</body></html>")
    (folder / "report.html").write_text("\n".join(parts), encoding="utf-8")
    return folder
