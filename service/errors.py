"""The one place where errors become HTTP responses, all in one JSON shape:

    {"error": {"status": 422, "code": "invalid_scenario", "message": "...", "field": "scenario", "valid": [...]}}

Every error the project raises on purpose is a `KBError` with a code (kb/errors.py; the uploads' `UploadError` with
one of its codes, ingest/uploads/errors.py); one handler answers them all, with the status the one table `STATUS`
gives the code.
FastAPI's own validation errors get the same shape, and anything unexpected is
logged and answered with a plain 500: never a stack trace to the client.

Where the 500 is made matters. Starlette sends the answer of an `Exception` handler from its
ServerErrorMiddleware, which sits outside every middleware the app adds: such a 500 went out without the
security headers and without CORS, and the error was logged twice (the handler, then uvicorn on the re-raise).
`UnexpectedErrorMiddleware` answers it instead, innermost of the app's middleware (`install` is called before
any other is added), so the 500 passes out through the same headers, CORS and logging as any answer. The
`Exception` handler stays as the last resort for a fault in a middleware itself, with the security headers.

The router's trailing-slash redirect is off: it built `Location` from the Host header, which any client
writes. A 404 for `/path/` where `/path` exists answers 307 with a relative `Location: /path` instead.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.errors import InvalidFilterError, KBError, StoreUnavailableError, UnencodableTextError
from service.security_headers import CSP, SECURITY_HEADERS

log = logging.getLogger("service")

UNENCODABLE = UnencodableTextError.code

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# The HTTP status of each reason an upload or a removal is refused (ingest/uploads/errors.py): the one table.
UPLOAD_STATUS: dict[str, int] = {
    "invalid_doc_id": 422,
    "doc_id_taken": 409,
    "replace_needed": 409,
    "invalid_kind": 422,
    "invalid_language": 422,
    "invalid_jurisdiction": 422,
    "invalid_scenario": 422,
    "invalid_title": 422,
    "invalid_filename": 422,
    "file_too_large": 413,
    "unsupported_type": 415,
    "type_mismatch": 415,
    "empty_file": 422,
    "not_utf8": 422,
    "unreadable_file": 422,
    "encrypted_file": 422,
    "too_many_pages": 422,
    "decompression_bomb": 422,
    "xml_entities": 422,
    "active_content": 422,
    "unknown_document": 404,
    "corpus_document": 409,
}
# The HTTP status of each code of the knowledge base's own errors (kb/errors.py). An `InvalidFilterError`'s code is
# `invalid_<field>` for whichever field: 422 unless named here.
KB_STATUS: dict[str, int] = {
    "not_built": 503,
    "not_calibrated": 503,
    "embedding_mismatch": 503,
    "store_unavailable": 503,
    "ranker_model": 503,
    "unknown_passage": 404,
    "invalid_question": 422,
    "unencodable_text": 422,
    "parse_error": 422,
    "split_error": 422,
    "invalid_dataset": 422,
    "locked_dataset": 409,
    "invalid_setting": 500,
    "invalid_manifest": 500,
}
STATUS: dict[str, int] = {**KB_STATUS, **UPLOAD_STATUS}  # the one table
_ANSWERED = {"accepted": 202, "deleted": 200}  # what a write the API carried out answers


def upload_status(outcome: str, code: str | None) -> int | None:
    """The HTTP status the API answers an upload outcome with, as the audit log records it: a refusal's by its
    code, an accepted upload 202, a removal 200; None for what no request waits for (the background ingest)."""
    if outcome == "rejected" and code is not None:
        return UPLOAD_STATUS[code]
    return _ANSWERED.get(outcome)


class ApiError(StarletteHTTPException):
    """An HTTP error a route or its guard raises with its own code and field (401 no_api_key, 409 doc_id_taken ...).

    An HTTPException, so it passes through FastAPI's body parsing and reaches the one handler below.
    """

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.field = field


def error_body(
    status: int, code: str, message: str, field: str | None = None, valid: list[str] | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field is not None:
        detail["field"] = field
    if valid is not None:
        detail["valid"] = list(valid)
    return {"error": detail}


def error_response(
    status: int, code: str, message: str, field: str | None = None, valid: list[str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, field, valid), status_code=status)


def status_of(exc: KBError) -> int:
    """The HTTP status of a knowledge-base error: its code's in `STATUS`; any other unknown value 422; else 500."""
    if exc.code in STATUS:
        return STATUS[exc.code]
    return 422 if isinstance(exc, InvalidFilterError) else 500


def translate(exc: KBError) -> JSONResponse:
    """A knowledge-base error as a response: the status its code stands for, the code, its own message and field
    (and the valid values, for a value the knowledge base does not hold)."""
    message, status = str(exc), status_of(exc)
    if status == 500:
        log.error("knowledge-base error %s (%s): %s", type(exc).__name__, exc.code, message)
    elif isinstance(exc, StoreUnavailableError):
        log.warning("vector store unavailable: %s", message)
    response = error_response(status, exc.code, message, field=exc.field, valid=getattr(exc, "valid", None))
    if isinstance(exc, StoreUnavailableError):
        response.headers["Retry-After"] = "5"
    return response


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "request"


def _message(error: dict[str, Any]) -> str:
    field = _field(error.get("loc", ()))
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', msg)})"
    if kind == "missing":
        return "the request body is missing" if field == "body" else f"{field} is required"
    return f"{field}: {msg}"


async def _kb_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KBError)
    return translate(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:
        return error_response(422, "invalid_request", "the request is not valid")
    first = errors[0]
    if first.get("type") == UNENCODABLE:  # the same code and message as the core's own check (kb/text.py)
        ctx = first.get("ctx", {})
        message = str(UnencodableTextError(ctx["field"], ctx["position"], ctx["codepoint"]))
        return error_response(422, UNENCODABLE, message, field=ctx["field"])
    messages = "; ".join(dict.fromkeys(_message(e) for e in errors))
    field = "body" if first.get("type") == "json_invalid" else _field(first.get("loc", ()))
    return error_response(422, "invalid_request", messages, field=field)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, ApiError):
        response = error_response(exc.status_code, exc.code, str(exc.detail), field=exc.field)
        response.headers.update(exc.headers or {})
        return response
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        redirect = _without_slash(request)
        if redirect is not None:
            return redirect
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = f"{request.method} is not allowed on {request.url.path}"
    response = error_response(exc.status_code, code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _without_slash(request: Request) -> Response | None:
    """307 to the same path without its trailing slash, when that path exists; `Location` is relative, never built
    from the Host header. None when there is no such path (or it would begin `//`, another host to a browser)."""
    path = request.url.path
    target = path.rstrip("/")
    if path == target or not target or target.startswith("//"):
        return None
    scope = {**request.scope, "path": target}
    if not any(route.matches(scope)[0] is not Match.NONE for route in request.app.router.routes):
        return None
    query = request.url.query
    return RedirectResponse(target + (f"?{query}" if query else ""), status_code=307)


class AnsweredOutside(Exception):
    """Raised inside the app for a middleware outside it to answer (the body limit's 413): not unexpected."""


def _internal_error() -> JSONResponse:
    return error_response(500, "internal_error", "an internal error occurred; it has been logged on the server")


class UnexpectedErrorMiddleware:
    """Anything a route raises that no handler took becomes the one 500, logged once, inside the app's middleware.

    Once an answer has started (a stream), no status can be sent any more: the error goes on to the server, which
    logs it and closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except AnsweredOutside:
            raise
        except Exception as exc:
            if started:
                raise
            log.error("unexpected error on %s %s", scope["method"], scope["path"], exc_info=exc)
            await _internal_error()(scope, receive, send)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """The last resort, outside the app's middleware (a fault in one of them): the security headers added here."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    response = _internal_error()
    response.headers.update({**SECURITY_HEADERS, "Content-Security-Policy": CSP})
    return response


def install(app: FastAPI) -> None:
    """Register the one handler set; call it before adding any middleware, so that its own sits innermost."""
    app.add_exception_handler(KBError, _kb_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.router.redirect_slashes = False
