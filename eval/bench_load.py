"""Load and soak benchmark: mixed ask, search and passage calls against a real `kb serve` on loopback.

    python -m eval.bench_load [--clients 8,32] [--requests 400] [--soak-seconds 0] [--url URL --pid PID] [--json]

Without --url it starts `kb serve` on a free loopback port over the knowledge base in KB_DATA_DIR, with the
rate limit off (KB_RATE_LIMIT_PER_MINUTE=0: one address sends everything here), and stops it at the end.
Load: for each client count, a closed loop of that many clients sends --requests requests in all, mixed
(by --mix, default ask 40 %, search 40 %, passage 20 %; questions from eval/datasets/tune.jsonl, passage ids
from the searches), and reports p50/p95/p99 per kind and overall, errors by status, and the server's RSS
(process and children) before and after. Soak (--soak-seconds N > 0): 8 clients send the same mix for N
seconds; the RSS is sampled every --sample-seconds (30) and printed as a series with its slope (MiB per
minute, least squares over the samples after the first, which still includes warm-up growth).
Bounded: every phase stops at its request count or at --budget seconds, and only loopback is addressed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from eval.metrics import latency_summary
from eval.servers import free_port, stop, wait_until_up

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "eval" / "datasets" / "tune.jsonl"
MIB = 1024 * 1024


@dataclass
class Phase:
    """What one load phase saw."""

    name: str
    clients: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    rss_series_mib: list[tuple[float, float]] = field(default_factory=list)

    def record(self, kind: str, status: int | str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[str(status)] += 1

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> dict[str, int]:
        return {status: n for status, n in self.statuses.items() if status != "200"}

    def summary(self) -> dict:
        everything = [x for values in self.latencies.values() for x in values]
        out = {
            "phase": self.name,
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "server_errors_5xx": sum(n for s, n in self.statuses.items() if s.startswith("5")),
            "seconds": round(self.seconds, 1),
            "requests_per_s": round(self.requests / self.seconds, 2) if self.seconds else 0.0,
            **_percentiles(everything),
            "by_kind": {kind: {"n": len(values), **_percentiles(values)} for kind, values in self.latencies.items()},
            "rss_mib_before": round(self.rss_before_mib, 1),
            "rss_mib_after": round(self.rss_after_mib, 1),
        }
        if self.rss_series_mib:
            out["rss_series_mib"] = [[round(t), round(m, 1)] for t, m in self.rss_series_mib]
            out["rss_slope_mib_per_min"] = round(_slope(self.rss_series_mib[1:]) * 60, 3)
        return out


def _percentiles(values: list[float]) -> dict[str, float]:
    return latency_summary(values) if values else {}


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MiB per second) of (seconds, MiB) points; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_m = statistics.fmean(m for _, m in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / den if den else 0.0


def rss_mib(pid: int) -> float:
    """Resident memory of the server process and its children (uvicorn workers)."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / MIB


# --- the workload -------------------------------------------------------------------------------------------------


class Workload:
    """Requests drawn at random (seeded) from the mix: questions from the dataset, passage ids from searches."""

    def __init__(self, questions: list[str], passage_ids: list[str], mix: dict[str, float], seed: int = 7) -> None:
        self.questions = questions
        self.passage_ids = passage_ids
        self.kinds = list(mix)
        self.weights = [mix[k] for k in self.kinds]
        self.random = random.Random(seed)

    def next(self) -> tuple[str, str, str, dict]:
        kind = self.random.choices(self.kinds, self.weights)[0]
        question = self.random.choice(self.questions)
        if kind == "ask":
            return kind, "POST", "/api/ask", {"json": {"question": question}}
        if kind == "search":
            return kind, "GET", "/api/search", {"params": {"q": question[:200], "k": 10}}
        passage_id = self.random.choice(self.passage_ids)
        return kind, "GET", f"/api/passages/{passage_id}", {}


def load_questions(path: Path = DATASET) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def collect_passage_ids(base: str, questions: list[str], n: int = 40) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for question in questions[:n]:
            response = client.get("/api/search", params={"q": question[:200], "k": 3})
            response.raise_for_status()
            ids.extend(hit["passage_id"] for hit in response.json())
    if not ids:
        raise SystemExit("no passage ids: is the knowledge base built?")
    return sorted(set(ids))


async def _run(base: str, clients: int, workload: Workload, phase: Phase, requests: int | None, until: float) -> None:
    """A closed loop: `clients` tasks, each sending its next request when the last is answered."""
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:

        async def one_client() -> None:
            nonlocal sent
            while time.monotonic() < until and (requests is None or sent < requests):
                sent += 1
                kind, method, path, kwargs = workload.next()
                start = time.perf_counter()
                try:
                    response = await client.request(method, path, **kwargs)
                    status: int | str = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                phase.record(kind, status, time.perf_counter() - start)

        await asyncio.gather(*(one_client() for _ in range(clients)))


def load_phase(base: str, pid: int, clients: int, requests: int, workload: Workload, budget_s: float) -> Phase:
    phase = Phase(f"load-{clients}", clients)
    phase.rss_before_mib = rss_mib(pid)
    start = time.monotonic()
    asyncio.run(_run(base, clients, workload, phase, requests, start + budget_s))
    phase.seconds = time.monotonic() - start
    phase.rss_after_mib = rss_mib(pid)
    return phase


def soak_phase(base: str, pid: int, seconds: float, sample_s: float, workload: Workload, clients: int = 8) -> Phase:
    phase = Phase(f"soak-{int(seconds)}s", clients)
    phase.rss_before_mib = rss_mib(pid)
    start = time.monotonic()

    async def sampled() -> None:
        async def sampler() -> None:
            while True:
                phase.rss_series_mib.append((time.monotonic() - start, rss_mib(pid)))
                await asyncio.sleep(sample_s)

        task = asyncio.create_task(sampler())
        await _run(base, clients, workload, phase, None, start + seconds)
        task.cancel()

    asyncio.run(sampled())
    phase.seconds = time.monotonic() - start
    phase.rss_after_mib = rss_mib(pid)
    phase.rss_series_mib.append((phase.seconds, phase.rss_after_mib))
    return phase


# --- the server ---------------------------------------------------------------------------------------------------


@contextmanager
def started_server(workers: int = 1) -> Iterator[tuple[str, int]]:
    """`kb serve` on loopback over KB_DATA_DIR, rate limit off; yields (base URL, pid) once /healthz says 200."""
    port = free_port()
    env = {**os.environ, "KB_RATE_LIMIT_PER_MINUTE": "0"}
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(f"{base}/healthz", proc, timeout=300)
        except RuntimeError as error:
            raise SystemExit(f"the server did not come up: {error}") from None
        yield base, proc.pid
    finally:
        stop(proc)
        log.close()


def _print(phase: dict) -> None:
    by_kind = ", ".join(f"{k} n={v['n']} p95={v.get('p95_ms')} ms" for k, v in phase["by_kind"].items())
    print(
        f"{phase['phase']:>12}: {phase['requests']} requests, {phase['clients']} clients, errors {phase['errors'] or 0}, "
        f"p50 {phase.get('p50_ms')} ms, p95 {phase.get('p95_ms')} ms, p99 {phase.get('p99_ms')} ms, "
        f"{phase['requests_per_s']} req/s; RSS {phase['rss_mib_before']} -> {phase['rss_mib_after']} MiB  ({by_kind})",
        file=sys.stderr,
    )
    if "rss_series_mib" in phase:
        series = " ".join(f"{t}s:{m}" for t, m in phase["rss_series_mib"])
        print(f"{'':>12}  RSS series (s:MiB) {series}; slope {phase['rss_slope_mib_per_min']} MiB/min", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="8,32", help="Concurrent clients per load phase, comma-separated.")
    parser.add_argument("--requests", type=int, default=400, help="Requests per load phase.")
    parser.add_argument("--mix", default="ask=0.4,search=0.4,passage=0.2", help="Share of each kind of request.")
    parser.add_argument("--soak-seconds", type=float, default=0.0, help="Soak for this long after the load phases.")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="RSS sampling interval of the soak.")
    parser.add_argument("--skip-load", action="store_true", help="Only the soak.")
    parser.add_argument("--budget", type=float, default=1800.0, help="Longest any load phase may run, seconds.")
    parser.add_argument("--url", help="A running service (loopback) instead of starting one; needs --pid.")
    parser.add_argument("--pid", type=int, help="The running service's process id, for its RSS.")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes of the service started here.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON on stdout.")
    args = parser.parse_args(argv)
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    if args.url and not args.pid:
        parser.error("--url needs --pid (the server's process id, for its memory)")
    if args.url and urlsplit_host(args.url) not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be a loopback address")

    @contextmanager
    def target() -> Iterator[tuple[str, int]]:
        if args.url:
            yield args.url.rstrip("/"), args.pid
        else:
            with started_server(args.workers) as running:
                yield running

    results = []
    with target() as (base, pid):
        questions = load_questions()
        workload = Workload(questions, collect_passage_ids(base, questions), mix)
        if not args.skip_load:
            for clients in (int(c) for c in args.clients.split(",")):
                phase = load_phase(base, pid, clients, args.requests, workload, args.budget).summary()
                _print(phase)
                results.append(phase)
        if args.soak_seconds > 0:
            phase = soak_phase(base, pid, args.soak_seconds, args.sample_seconds, workload).summary()
            _print(phase)
            results.append(phase)
    if args.json:
        print(json.dumps(results, indent=2))


def urlsplit_host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


if __name__ == "__main__":
    main()
