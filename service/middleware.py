"""The service's limits and headers, as plain ASGI middleware (so server-sent events stream through untouched).

- `RateLimitMiddleware`: a token bucket per client address for /api/*, every method (OPTIONS too):
  `rate_limit_burst` requests at once, refilled at `rate_limit_per_minute`; past that 429 with `Retry-After` in
  the one error shape. Pages, /static, /docs and /healthz are not limited: a page load must not use up a client's
  questions. The buckets live in this process's memory (per worker with `--workers N`), at most MAX_CLIENTS of
  them, least recently seen dropped first. The address is the socket's peer, or, from a proxy named in
  KB_FORWARDED_ALLOW_IPS, the client it forwards for (uvicorn's proxy headers middleware rewrites the scope;
  service/server.py). With CORS on, a second instance outside CORS takes CORS preflights from the same buckets
  (CORS answers a preflight itself, so it never reaches the first one, whose 429s carry CORS headers).
- `BodyLimitMiddleware`: 413 for a body over the limit of its path, told by Content-Length before anything is
  read, or counted as the bytes arrive (chunked uploads name no length).
- `SecurityHeadersMiddleware`: a strict CSP and the usual hardening headers on every response, errors and 500s
  included (service/errors.py answers unexpected errors inside it); /docs and /redoc get a CSP that lets
  FastAPI's Swagger UI and ReDoc load from their CDN; /widget.js and /static/* may be loaded by other origins
  (the chat widget is embedded in host pages), everything else only by this one.
- `HeadMiddleware`: HEAD is answered wherever GET is (monitors probe /healthz with HEAD): the app sees a GET and
  the body is dropped; FastAPI's routes accept only the methods they name.

A token bucket is a dozen lines: it is kept here rather than taking a rate-limit library whose limit windows
cannot tell the exact `Retry-After` of one client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.settings import ServiceSettings
from service.errors import AnsweredOutside, error_body
from service.security_headers import CSP, DOCS_CSP, SECURITY_HEADERS

RATE_LIMITED_PREFIXES = ("/api/",)
# Loaded by other sites' pages: the widget's script (`<script src=".../widget.js">`) and its stylesheets
CROSS_ORIGIN_PATHS = ("/widget.js",)
CROSS_ORIGIN_PREFIXES = ("/static/",)
# Uploads get KB_UPLOAD_MAX_BYTES and room for the multipart framing and form fields; the route checks the file
UPLOAD_PATH = "/api/documents"
MULTIPART_FRAMING = 64 * 1024
MAX_CLIENTS = 10_000


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status, headers=dict(headers or {}))


# --- rate limit ----------------------------------------------------------------------------------------------------


class TokenBuckets:
    """One bucket per key: `burst` tokens at most, refilled at `per_minute / 60` a second; a request takes one."""

    def __init__(
        self, per_minute: int, burst: int, max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when); insertion order = last seen

    def take(self, key: str) -> float:
        """0.0 when `key` may go ahead (a token is taken), else the seconds until it may."""
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def is_preflight(scope: Scope) -> bool:
    """A CORS preflight, as Starlette's CORSMiddleware tells one (and answers it without calling the app)."""
    headers = Headers(scope=scope)
    return scope["method"] == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        per_minute: int,
        burst: int,
        prefixes: tuple[str, ...] = RATE_LIMITED_PREFIXES,
        buckets: TokenBuckets | None = None,
        preflights_only: bool = False,
    ):
        self.app = app
        self.buckets = buckets if buckets is not None else TokenBuckets(per_minute, burst)
        self.per_minute = per_minute
        self.prefixes = prefixes
        self.preflights_only = preflights_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(self.prefixes)
            or (self.preflights_only and not is_preflight(scope))
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        response = _error(
            429,
            "rate_limited",
            f"too many requests from this address: at most {self.per_minute} a minute; retry in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)


# --- body size -----------------------------------------------------------------------------------------------------


class BodyTooLarge(AnsweredOutside):
    """Raised from `receive` when the body passes its limit; the middleware answers 413."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_limit: int, limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = default_limit
        # longest prefix first, so /api/documents/x finds /api/documents before /api
        self.limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)), self.default_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])

        async def too_large() -> None:
            message = f"the request body is larger than the limit of {limit} bytes for {scope['path']}"
            await _error(413, "body_too_large", message)(scope, receive, send)

        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await too_large()
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app makes of the cut-off body (FastAPI says 400), the answer is 413
                if not started:
                    started = True
                    await too_large()
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        if exceeded and not started:
            await too_large()


# --- security headers ----------------------------------------------------------------------------------------------


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, docs_paths: tuple[str, ...] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.docs_paths = docs_paths

    def headers_for(self, path: str) -> dict[str, str]:
        headers = dict(SECURITY_HEADERS)
        is_docs = any(path == p or path.startswith(p + "/") for p in self.docs_paths)
        headers["Content-Security-Policy"] = DOCS_CSP if is_docs else CSP
        embeddable = path in CROSS_ORIGIN_PATHS or path.startswith(CROSS_ORIGIN_PREFIXES)
        headers["Cross-Origin-Resource-Policy"] = "cross-origin" if embeddable else "same-origin"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- HEAD ----------------------------------------------------------------------------------------------------------

class HeadMiddleware:
    """A HEAD request goes on as a GET; its answer keeps the headers (Content-Length too) and loses the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # a copy: the server's own scope keeps HEAD, so it frames the answer as one without a body
        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


# --- wiring --------------------------------------------------------------------------------------------------------


def install_limits(app: FastAPI, settings: ServiceSettings) -> None:
    """HEAD as GET, body and rate limits, then CORS around them (a 429 still carries CORS headers), and outside
    CORS the rate limit for preflights, from the same buckets."""
    app.add_middleware(HeadMiddleware)
    limits = {UPLOAD_PATH: settings.upload_max_bytes + MULTIPART_FRAMING, **settings.body_limits}
    app.add_middleware(BodyLimitMiddleware, default_limit=settings.max_body_bytes, limits=limits)
    rate = {"per_minute": settings.rate_limit_per_minute, "burst": settings.rate_limit_burst}
    buckets = TokenBuckets(**rate) if settings.rate_limit_per_minute > 0 else None
    if buckets is not None:
        app.add_middleware(RateLimitMiddleware, **rate, buckets=buckets)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Accept"],
            expose_headers=["Retry-After"],
        )
        if buckets is not None:
            app.add_middleware(RateLimitMiddleware, **rate, buckets=buckets, preflights_only=True)
    _document_limits(app)


def install_headers(app: FastAPI) -> None:
    """Security headers, outermost, so every response (errors from the other middleware too) carries them."""
    docs = tuple(p for p in (app.docs_url, app.redoc_url) if p)
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs)


def _document_limits(app: FastAPI) -> None:
    """Name 429 (every /api operation), 413 and 400 (those with a body) in the OpenAPI schema, in the one error shape."""
    make_schema = app.openapi

    def openapi() -> dict[str, Any]:
        schema = make_schema()
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith(RATE_LIMITED_PREFIXES):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.setdefault(
                    "429",
                    {
                        "description": "Too many requests from this address: retry after `Retry-After` seconds",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": error,
                    },
                )
                if method in ("post", "put", "patch"):
                    responses.setdefault("413", {"description": "The request body is too large", "content": error})
                    # FastAPI's answer to a body it cannot decode (not UTF-8), in the one shape by service/errors.py
                    responses.setdefault("400", {"description": "The request body cannot be read", "content": error})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
