"""GET /healthz: 200 with the passage count when the knowledge base is built, 503 when it is not."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kb.errors import NotBuiltError
from service.deps import KB
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    summary="Liveness and readiness",
    responses={503: {"model": Health, "description": "Running, but the knowledge base is not built: run `kb ingest`"}},
)
def healthz(kb: KB) -> Health | JSONResponse:
    if not kb.is_built():
        body = Health(status="not_built", passages=0, message=str(NotBuiltError(str(kb.settings.data_dir))))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    return Health(status="ok", passages=kb.catalog["passages"])
