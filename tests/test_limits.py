"""Limits of the service: rate limit, body and question size, CORS, headers, timeouts.

What the app answers is tested on it in process (`make_app_client`); what uvicorn does, trusting a reverse proxy's
X-Forwarded-For and `kb serve` refusing a bad proxy setting, against a real `kb serve` on loopback.
Rate limits are per client address, so each test speaks from its own address (127.0.0.N; over TCP, Linux routes
the whole 127/8 to lo) and the tests do not use up each other's requests. The app's generator points at a
server that accepts connections and never answers, so every /api/ask here also shows the generator's timeout.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from service.middleware import CSP, MULTIPART_FRAMING, BodyLimitMiddleware, TokenBuckets
from tests.conftest import kb_env, make_app_client
from tests.servers import serve

ALLOWED_ORIGIN = "https://hospital.example"
PER_MINUTE, BURST = 6, 3


class StalledServer:
    """Accepts TCP connections and never answers; counts the connections the client gave up on (closed)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.closed = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(65536):  # read the request, answer nothing, until the client hangs up
                    pass
            except OSError:
                pass
        with self._lock:
            self.closed += 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def stalled_llm() -> Iterator[StalledServer]:
    server = StalledServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def app_client(small_kb, stalled_llm: StalledServer) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app in process, with the rate limit, CORS for one origin, the default body limits, and the stalled generator."""
    from kb.settings import GeneratorSettings

    with make_app_client(
        small_kb,
        llm=GeneratorSettings(url=stalled_llm.url, timeout_s=2),
        rate_limit_per_minute=PER_MINUTE,
        rate_limit_burst=BURST,
        cors_origins=[ALLOWED_ORIGIN],
        max_body_bytes=64 * 1024,
        body_limits={},
        log_questions=False,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, small_kb, stalled_llm: StalledServer) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`kb serve` with the app's settings and no proxy named: whether uvicorn believes an X-Forwarded-For."""
    settings = small_kb.settings
    env = kb_env(
        settings.data_dir, settings.manifest, settings.corpus_dir,
        KB_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE), KB_RATE_LIMIT_BURST=str(BURST), KB_CORS_ORIGINS=ALLOWED_ORIGIN,
        KB_LLM_URL=stalled_llm.url, KB_LLM_TIMEOUT_S="2",
    )
    for name in ("KB_MAX_BODY_BYTES", "KB_BODY_LIMITS", "KB_LOG_QUESTIONS"):
        env.pop(name, None)
    yield from serve(env, tmp_path_factory.mktemp("limits-server") / "server.log")


@contextmanager
def client(server: str | TestClient, n: int) -> Iterator[httpx.Client]:
    """A client speaking from 127.0.0.n: a client address of its own for the rate limit. To a real server (its URL)
    over TCP from that address; to the app in process as that address, on the app's own event loop (its portal),
    so it shares the app's state (the rate limit's buckets) with every other client of it."""
    if isinstance(server, str):
        with httpx.Client(base_url=server, timeout=120, transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}")) as c:
            yield c
        return
    other = TestClient(server.app, raise_server_exceptions=False, client=(f"127.0.0.{n}", 50000))
    other.portal = server.portal
    yield other


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["code"] == code, body
    return body["error"]


# --- rate limit -------------------------------------------------------------------------------------------------


def test_rate_limit_per_client_with_retry_after(app_client: TestClient) -> None:
    with client(app_client, 2) as first, client(app_client, 3) as second:
        for _ in range(BURST):
            assert first.get("/api/search", params={"q": "innovationspartnerskab"}).status_code == 200
        limited = first.get("/api/search", params={"q": "innovationspartnerskab"})
        error = _error(limited, 429, "rate_limited")
        assert f"at most {PER_MINUTE} a minute" in error["message"]
        # one token comes back every 60 / PER_MINUTE = 10 s
        assert 1 <= int(limited.headers["Retry-After"]) <= 60 // PER_MINUTE
        _error(first.post("/api/ask", json={"question": "Hvad er et innovationspartnerskab?"}), 429, "rate_limited")
        # another address has its own bucket
        assert second.get("/api/search", params={"q": "innovationspartnerskab"}).status_code == 200


def test_pages_static_docs_and_health_are_not_limited(app_client: TestClient) -> None:
    with client(app_client, 6) as c:
        for _ in range(BURST):
            assert c.get("/api/scenarios").status_code == 200
        _error(c.get("/api/scenarios"), 429, "rate_limited")
        for _ in range(3):
            for path in ("/", "/clauses", "/widget.js", "/static/widget.css", "/healthz", "/docs", "/openapi.json"):
                assert c.get(path).status_code == 200, path


def test_rate_limited_answer_carries_cors_and_security_headers(app_client: TestClient) -> None:
    with client(app_client, 4) as c:
        for _ in range(BURST + 1):
            response = c.get("/api/documents", headers={"Origin": ALLOWED_ORIGIN})
        _error(response, 429, "rate_limited")
        # the widget on the hospital's page can read the error and when to retry
        assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "retry-after" in response.headers["access-control-expose-headers"].lower()
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory, small_kb) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The service behind a reverse proxy at 127.0.0.1, named in KB_FORWARDED_ALLOW_IPS."""
    settings = small_kb.settings
    env = kb_env(
        settings.data_dir, settings.manifest, settings.corpus_dir,
        KB_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE), KB_RATE_LIMIT_BURST=str(BURST), KB_FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    yield from serve(env, tmp_path_factory.mktemp("proxied-server") / "server.log")


def _search(c: httpx.Client, forwarded_for: str) -> httpx.Response:
    return c.get("/api/search", params={"q": "innovationspartnerskab"}, headers={"X-Forwarded-For": forwarded_for})


def test_behind_a_trusted_proxy_each_client_it_forwards_has_its_own_bucket(proxied_server: str) -> None:
    with client(proxied_server, 1) as proxy:
        for _ in range(BURST):
            assert _search(proxy, "203.0.113.7").status_code == 200
        _error(_search(proxy, "203.0.113.7"), 429, "rate_limited")
        assert _search(proxy, "203.0.113.8").status_code == 200, "another client behind the same proxy is not limited"
        # the proxy appends the address it saw; one the client wrote in front of it changes nothing
        _error(_search(proxy, "198.51.100.1, 203.0.113.7"), 429, "rate_limited")


@pytest.mark.usefixtures("small_kb")  # both servers serve it: named, so the test runs after the subset is built
@pytest.mark.parametrize("which", ["proxied_server", "server"])
def test_forwarded_for_from_an_untrusted_peer_is_ignored(which: str, request: pytest.FixtureRequest) -> None:
    """A client that writes its own X-Forwarded-For, a new address each time, still has one bucket: its own."""
    base = request.getfixturevalue(which)
    with client(base, 14) as c:
        for i in range(BURST):
            assert _search(c, f"203.0.113.{100 + i}").status_code == 200
        _error(_search(c, "203.0.113.200"), 429, "rate_limited")


def test_a_proxy_setting_that_is_not_an_address_stops_kb_serve(small_kb) -> None:  # type: ignore[no-untyped-def]
    settings = small_kb.settings
    env = kb_env(settings.data_dir, settings.manifest, settings.corpus_dir, KB_FORWARDED_ALLOW_IPS="10.0.0.5,proxy.local")
    done = subprocess.run([sys.executable, "-m", "kb.cli", "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "KB_FORWARDED_ALLOW_IPS: 'proxy.local' is not an IP address or network" in done.stderr
    assert "Traceback" not in done.stderr


def test_token_bucket_refills_and_forgets_the_least_recent_clients() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_minute=60, burst=2, max_clients=3, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)  # empty: one token a second
    now[0] = 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert buckets.take("a") == 0.0
    now[0] = 100.0
    assert [buckets.take("a"), buckets.take("a"), buckets.take("a")] == [0.0, 0.0, pytest.approx(1.0)]  # burst caps
    for key in ("b", "c", "d"):
        buckets.take(key)
    assert len(buckets) == 3 and buckets.take("a") == 0.0  # "a" was forgotten: a full bucket again


def test_rate_limit_setting_zero_turns_it_off(small_kb) -> None:  # type: ignore[no-untyped-def]
    from service.app import create_app
    from kb.settings import ServiceSettings
    from service.middleware import RateLimitMiddleware

    def limited(**values: int) -> bool:
        service = ServiceSettings(_env_file=None, **values)  # type: ignore[call-arg]
        app = create_app(small_kb.settings.model_copy(update={"service": service}))
        return any(m.cls is RateLimitMiddleware for m in app.user_middleware)

    assert limited(rate_limit_per_minute=30) and not limited(rate_limit_per_minute=0)


# --- body and question size -------------------------------------------------------------------------------------


def test_body_over_the_limit_is_413_by_length_or_by_count(app_client: TestClient) -> None:
    big = ('{"question": "' + "a" * 70_000 + '"}').encode()
    with client(app_client, 5) as c:
        error = _error(c.post("/api/ask", content=big, headers={"Content-Type": "application/json"}), 413, "body_too_large")
        assert "65536 bytes" in error["message"] and "/api/ask" in error["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes as they come
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        streamed = c.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in streamed.request.headers
        _error(streamed, 413, "body_too_large")


def test_uploads_have_their_own_larger_body_limit(app_client: TestClient, small_kb) -> None:  # type: ignore[no-untyped-def]
    from service.app import create_app
    from kb.settings import ServiceSettings

    settings = ServiceSettings(_env_file=None, body_limits={"/api/doc": 2048})  # type: ignore[call-arg]
    app = create_app(small_kb.settings.model_copy(update={"service": settings}))
    options = next(m.kwargs for m in app.user_middleware if m.cls is BodyLimitMiddleware)
    limits = BodyLimitMiddleware(None, **options)  # type: ignore[arg-type]
    assert limits.limit_for("/api/ask") == 64 * 1024 == settings.max_body_bytes
    assert limits.limit_for("/api/documents") == settings.upload_max_bytes + MULTIPART_FRAMING
    assert limits.limit_for("/api/doc/x") == 2048  # a path of its own (KB_BODY_LIMITS)
    upload = {"file": ("contract.md", b"# Contract\n\n" + b"The supplier shall deliver. " * 4000, "text/markdown")}
    with client(app_client, 7) as c:
        # the same 112 kB body: too large for a question, not for a document upload (whatever the route answers)
        assert c.post("/api/documents", files=upload).status_code != 413
        _error(c.post("/api/ask", files=upload), 413, "body_too_large")


def test_question_and_query_length_limits(app_client: TestClient, stalled_llm: StalledServer) -> None:
    with client(app_client, 8) as c:
        longest = ("Hvornår skal en ordregiver bruge et innovationspartnerskab? " * 40)[:2000]
        called = stalled_llm.accepted
        answered = c.post("/api/ask", json={"question": longest})
        assert answered.status_code == 200, answered.text
        # the generator was called and its server never answered: the answer is the extractive one, in time
        assert not answered.json()["abstained"] and stalled_llm.accepted > called
        assert answered.json()["generator"] == "extractive"
        error = _error(c.post("/api/ask", json={"question": longest + "?"}), 422, "invalid_question")
        assert error["field"] == "question" and "2001" in error["message"] and "2000" in error["message"]
        error = _error(c.get("/api/search", params={"q": "x" * 2001}), 422, "invalid_request")
        assert error["field"] == "q"


# --- CORS and headers -------------------------------------------------------------------------------------------


def test_cors_allows_only_the_listed_origins(app_client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with client(app_client, 9) as c:
        allowed = c.options("/api/ask", headers={"Origin": ALLOWED_ORIGIN, **preflight})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        refused = c.options("/api/ask", headers={"Origin": "https://evil.example", **preflight})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        plain = c.get("/api/scenarios", headers={"Origin": "https://evil.example"})
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers


class _Assets(HTMLParser):
    """What a page loads (script src, link href, img src) and what it holds inline (script, style, style=)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        if values.get("style") is not None:
            self.inline.append(f"style= on <{tag}>")
        if any(name.startswith("on") for name in values):
            self.inline.append(f"event handler attribute on <{tag}>")
        for name in ("src", "href"):
            if values.get(name) and (tag != "a"):
                self.urls.append(values[name] or "")


def _assets(html: str) -> _Assets:
    parser = _Assets()
    parser.feed(html)
    return parser


HARDENING = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def test_pages_get_the_strict_policy_and_fit_it(app_client: TestClient) -> None:
    with client(app_client, 10) as c:
        for path in ("/", "/clauses", "/roadmap"):
            page = c.get(path)
            assert page.status_code == 200, path
            for name, value in HARDENING.items():
                assert page.headers[name] == value, (path, name)
            assert page.headers["content-security-policy"] == CSP
            assert "camera=()" in page.headers["permissions-policy"]
            assert page.headers["cross-origin-resource-policy"] == "same-origin"
            assets = _assets(page.text)
            # nothing the strict policy would block: no inline script or style, nothing from another origin
            assert assets.inline == [], (path, assets.inline)
            assert [u for u in assets.urls if urlsplit(u).netloc] == [], (path, assets.urls)
        api = c.get("/api/scenarios")
        assert api.headers["content-security-policy"] == CSP and api.headers["x-frame-options"] == "DENY"


def test_the_widget_can_be_loaded_by_other_sites(app_client: TestClient) -> None:
    with client(app_client, 11) as c:
        for path, kind in (("/widget.js", "javascript"), ("/static/widget.css", "text/css")):
            asset = c.get(path, headers={"Origin": ALLOWED_ORIGIN})
            assert asset.status_code == 200 and kind in asset.headers["content-type"], path
            assert asset.headers["cross-origin-resource-policy"] == "cross-origin", path
            assert asset.headers["x-content-type-options"] == "nosniff"


def test_docs_page_gets_a_policy_that_lets_it_load(app_client: TestClient) -> None:
    with client(app_client, 12) as c:
        docs = c.get("/docs")
        policy = docs.headers["content-security-policy"]
        assert docs.status_code == 200 and docs.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in policy
        directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
        for url in _assets(docs.text).urls:
            parts = urlsplit(url)
            if not parts.netloc:
                continue
            directive = "script-src" if url.endswith(".js") else "style-src" if url.endswith(".css") else "img-src"
            assert f"{parts.scheme}://{parts.netloc}" in directives[directive], (url, directive)
        assert "'unsafe-inline'" in directives["script-src"]  # Swagger UI starts from an inline script


def test_openapi_names_the_limit_answers(app_client: TestClient) -> None:
    with client(app_client, 13) as c:
        paths = c.get("/openapi.json").json()["paths"]
    ask = paths["/api/ask"]["post"]["responses"]
    assert {"429", "413"} <= set(ask) and "Retry-After" in ask["429"]["headers"]
    assert "429" in paths["/api/search"]["get"]["responses"] and "413" not in paths["/api/search"]["get"]["responses"]
    assert "/healthz" not in paths or "429" not in paths["/healthz"]["get"]["responses"]


# --- generator timeouts -----------------------------------------------------------------------------------------


def test_generator_gives_up_on_a_stalled_server_and_closes_its_connections() -> None:
    pytest.importorskip("llama_index.llms.openai_like")
    from kb.answer import AnswerSentence
    from kb.answering import Composition, Evidence
    from kb.generator import EXTRACTIVE, GeneratedAnswerer, GeneratorSettings
    from kb.passage import Passage

    passage = Passage(
        passage_id="ai-act:art-26.6#en", ref="ai-act:art-26.6", doc_id="ai-act", locator="art-26.6", title="AI Act",
        heading="Article 26", text="Deployers shall keep the logs for at least six months.", language="en",
        version="test", kind="regulation", jurisdiction="eu", text_key="ai-act/en/test",
    )
    fallback = Composition(sentences=[AnswerSentence(text="extractive", citations=[1], section="answer")], text="x")
    # its own stalled server: the module's one also holds the service's generator calls, which close on their own clock
    stalled_llm = StalledServer()
    settings = GeneratorSettings(_env_file=None, url=stalled_llm.url, timeout_s=1.0)  # type: ignore[call-arg]
    answerer = GeneratedAnswerer.from_settings(settings)
    assert answerer is not None
    try:
        result = answerer.answer("How long?", "en", [Evidence(passage, 0.9, 0)], "DEMO", lambda: fallback)
        assert result == (fallback, EXTRACTIVE)
        # not only abandoned: the HTTP calls themselves time out and hang up (first try and one retry)
        deadline = time.monotonic() + 30
        while stalled_llm.closed < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stalled_llm.accepted == 2
        assert stalled_llm.closed == 2
    finally:
        answerer.close()
        stalled_llm.close()


def test_every_generator_timeout_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_index.llms.openai_like")
    from kb.generator import MAX_RETRIES, GeneratedAnswerer, GeneratorSettings

    monkeypatch.setenv("KB_LLM_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("KB_LLM_TIMEOUT_S", "7")
    answerer = GeneratedAnswerer.from_settings(GeneratorSettings(_env_file=None))  # type: ignore[call-arg]
    assert answerer is not None
    try:
        assert answerer.timeout_s == 7 and answerer.llm.timeout * (1 + MAX_RETRIES) == 7
        # the openai clients llama-index builds carry the same per-attempt timeout
        clients = [answerer.llm._get_client(), answerer.llm._get_aclient()]
        assert [c.timeout for c in clients] == [answerer.llm.timeout] * 2
    finally:
        answerer.close()

