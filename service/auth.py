"""API keys for the write endpoints: kept hashed in the settings, compared in constant time, checked before the body.

A key is a random token (`kb apikey NAME` makes one). The settings hold only
`sha256:<hex>:<role>:<name>` (KB_API_KEYS), so a leaked settings file or log
gives no key away. The presented key's SHA-256 is compared with every stored
hash by `hmac.compare_digest`, with no early exit, so the time taken tells
nothing about which key, or how much of one, matched.

Write routes use `AuthFirstRoute`, which checks the key before FastAPI reads
the request body: a client without a valid key cannot make the service receive
and spool a large upload. `WriteKey` repeats the check as a dependency so the
OpenAPI schema documents the `X-API-Key` header and the route learns who called.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from service.audit import AuditLog
from kb.settings import ServiceSettings
from service.errors import ApiError

HEADER = "X-API-Key"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
Role = Literal["write", "read"]


@dataclass(frozen=True)
class Caller:
    """Who presented a valid key: its name (the audit log's `who`) and role."""

    name: str
    role: Role


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe."""
    return "kbk_" + secrets.token_urlsafe(32)


def settings_entry(key: str, role: Role, name: str) -> str:
    """The KB_API_KEYS entry for a key: its hash, never the key."""
    return f"sha256:{hash_key(key)}:{role}:{name}"


def identify(presented: str | None, entries: list[str]) -> Caller | None:
    """The caller a presented key belongs to, or None; every entry is compared, in constant time each."""
    if not presented:
        return None
    digest = hashlib.sha256(presented.encode()).digest()
    found: Caller | None = None
    for entry in entries:
        _, hex_hash, role, name = entry.split(":", 3)
        if hmac.compare_digest(digest, bytes.fromhex(hex_hash)) and found is None:
            found = Caller(name=name, role=role)  # type: ignore[arg-type]
    return found


def audit_log(request: Request) -> AuditLog:
    """The process's audit log (KB_AUDIT_LOG, default <KB_DATA_DIR>/audit.jsonl)."""
    state = request.app.state
    log = getattr(state, "audit_log", None)
    if log is None:
        settings: ServiceSettings = state.service_settings
        path = settings.audit_log or state.kb.settings.data_dir / "audit.jsonl"
        log = AuditLog(path, refused_max_bytes=settings.audit_refused_max_bytes)
        state.audit_log = log
    return log


def action_of(request: Request) -> str:
    return {"POST": "upload", "DELETE": "delete"}.get(request.method, request.method.lower())


def authorize(request: Request, presented: str | None) -> Caller:
    """The caller with write rights; 401 without a valid key, 403 with a read-only one. Refusals are audited."""
    cached = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    settings: ServiceSettings = request.app.state.service_settings
    caller = identify(presented, settings.api_keys)
    doc_id = request.path_params.get("doc_id")
    if caller is None:
        code = "invalid_api_key" if presented else "missing_api_key"
        audit_log(request).write(who=None, action=action_of(request), outcome="denied", doc_id=doc_id, status=401, code=code)
        message = (
            f"the {HEADER} header does not hold a valid API key"
            if presented
            else f"this endpoint changes the knowledge base: send an API key with write rights in the {HEADER} header"
        )
        raise ApiError(401, code, message, field=HEADER, headers={"WWW-Authenticate": f'ApiKey header="{HEADER}"'})
    if caller.role != "write":
        audit_log(request).write(
            who=caller.name, action=action_of(request), outcome="denied", doc_id=doc_id, status=403, code="read_only_key"
        )
        raise ApiError(403, "read_only_key", f"the API key {caller.name!r} may read but not write", field=HEADER)
    request.state.caller = caller
    return caller


_api_key_header = APIKeyHeader(
    name=HEADER, auto_error=False, description="An API key with write rights (KB_API_KEYS; `kb apikey NAME` makes one)."
)


def require_write(request: Request, key: Annotated[str | None, Security(_api_key_header)]) -> Caller:
    return authorize(request, key)


WriteKey = Annotated[Caller, Security(require_write)]


class AuthFirstRoute(APIRoute):
    """Checks the API key of a write request before its body is read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            if request.method in WRITE_METHODS:
                authorize(request, request.headers.get(HEADER))
            return await handler(request)

        return guarded
