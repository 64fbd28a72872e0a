"""GET /healthz: 200 with the passage count when the knowledge base is built and its store answers; 503 when it
is not built or the store (a Chroma server) is not reachable.

Each answer names the worker process (`X-KB-Worker`) and the keyword index it answers from (`X-KB-Index`, the
stamp the last ingest wrote): with several workers this shows each one has picked up a new ingest.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from kb.errors import NotBuiltError, StoreUnavailableError
from service.deps import KB
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    summary="Liveness and readiness",
    responses={
        503: {
            "model": Health,
            "description": "Running, but the knowledge base is not built (`kb ingest`) or its vector store is not reachable",
        }
    },
)
def healthz(kb: KB, response: Response) -> Health | JSONResponse:
    built = kb.is_built()
    headers = {"X-KB-Worker": str(os.getpid()), "X-KB-Index": kb.index_version or "none"}
    if not built:
        body = Health(status="not_built", passages=0, message=str(NotBuiltError(str(kb.settings.data_dir))))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503, headers=headers)
    try:
        kb.check_store()
    except StoreUnavailableError as exc:
        body = Health(status="store_unavailable", passages=kb.catalog["passages"], message=str(exc))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503, headers=headers | {"Retry-After": "5"})
    response.headers.update(headers)
    return Health(status="ok", passages=kb.catalog["passages"])
