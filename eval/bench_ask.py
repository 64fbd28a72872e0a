"""Benchmark: `ask` latency in process and over HTTP with 1 and 8 concurrent clients.

    python -m eval.bench_ask [--dataset eval/datasets/dev.jsonl] [--requests 200] [--port 8765]

Runs against the knowledge base in KB_DATA_DIR (build it with `kb ingest`). The
HTTP part starts `kb serve` on loopback, sends a fixed number of requests per
client count (closed loop), and stops the server. Prints p50/p95/p99, answers
per second and errors. Bounded: each phase stops after --requests requests.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from eval.dataset import load_dataset  # noqa: E402
from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.settings import REPO_ROOT, get_settings  # noqa: E402


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50_ms": round(1000 * pick(0.50), 1),
        "p95_ms": round(1000 * pick(0.95), 1),
        "p99_ms": round(1000 * pick(0.99), 1),
        "mean_ms": round(1000 * statistics.fmean(ordered), 1),
    }


def in_process(questions: list[str], requests: int) -> dict[str, float]:
    kb = KnowledgeBase(get_settings())
    kb.ask(questions[0])  # load models and indexes once, as a worker does
    samples = []
    started = time.perf_counter()
    for i in range(requests):
        t = time.perf_counter()
        kb.ask(questions[i % len(questions)])
        samples.append(time.perf_counter() - t)
    wall = time.perf_counter() - started
    return _percentiles(samples) | {"requests": requests, "answers_per_s": round(requests / wall, 1)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def over_http(questions: list[str], requests: int, clients: int, url: str) -> dict[str, float]:
    import httpx

    samples: list[float] = []
    errors = 0

    def worker(offset: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(offset, requests, clients):
                t = time.perf_counter()
                try:
                    response = client.post("/api/ask", json={"question": questions[i % len(questions)]})
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                samples.append(time.perf_counter() - t)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - started
    return _percentiles(samples) | {"clients": clients, "requests": requests, "errors": errors, "answers_per_s": round(requests / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO_ROOT / "eval" / "datasets" / "dev.jsonl")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1, help="Service workers for the HTTP phase.")
    args = parser.parse_args()
    questions = [q.question for q in load_dataset(args.dataset)]

    results = {"in_process": in_process(questions, args.requests)}
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        httpx.post(f"{url}/api/ask", json={"question": questions[0]}, timeout=60)  # warm
        for clients in (1, 8):
            results[f"http_{clients}_clients"] = over_http(questions, args.requests, clients, url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for phase, figures in results.items():
        print(f"{phase:18s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
