"""GET /healthz: 200 with the passage count when the knowledge base answers; 503 when it is not built or the store
(a Chroma server) is not reachable. While a build runs (`kb serve` starts one on a knowledge base that was never
built), `build` says how far it is: passages embedded of the total, the current text, the time left; the status is
`building` once keyword search answers over every text, and `not_built` (503) for the few seconds before.

Each answer names the worker process (`X-KB-Worker`) and the keyword index it answers from (`X-KB-Index`, the
stamp the last ingest wrote): with several workers this shows each one has picked up a new ingest.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from kb.build_progress import read_build_progress
from kb.errors import NotBuiltError, StoreUnavailableError
from service.deps import KB
from service.schemas import BuildOut, Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    summary="Liveness and readiness, and the build's progress",
    responses={
        503: {
            "model": Health,
            "description": "Running, but the knowledge base is not built (`kb ingest`) or its vector store is not reachable",
        }
    },
)
def healthz(kb: KB, response: Response) -> Health | JSONResponse:
    built = kb.is_built()
    headers = {"X-KB-Worker": str(os.getpid()), "X-KB-Index": kb.index_version or "none", "Cache-Control": "no-store"}
    progress = read_build_progress(kb.settings.build_progress_file)
    missing = kb.not_embedded() if built else []
    # shown while a build runs, and after one that stopped or left passages without vectors
    show = progress is not None and (progress.state != "done" or bool(missing))
    build = BuildOut.model_validate(progress.summary()) if show and progress is not None else None
    if not built:
        message = str(NotBuiltError(str(kb.settings.data_dir)))
        if progress is not None and progress.state == "building":
            message = "the knowledge base is being built: keyword search answers within a minute, then it improves as texts are embedded"
        body = Health(status="not_built", passages=0, message=message, build=build)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503, headers=headers)
    try:
        kb.check_store()
    except StoreUnavailableError as exc:
        body = Health(status="store_unavailable", passages=kb.catalog["passages"], message=str(exc), build=build)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503, headers=headers | {"Retry-After": "5"})
    response.headers.update(headers)
    status = "ok"
    if missing or (progress is not None and progress.state == "building"):
        status = "building" if progress is not None and progress.state == "building" else "partial"
    return Health(status=status, passages=kb.catalog["passages"], build=build)
