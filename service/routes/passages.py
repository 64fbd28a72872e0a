"""GET /api/passages/{passage_id}: a passage, its neighbours and its parallel versions in other languages."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import BuiltKB
from service.schemas import ErrorBody, PassageView

router = APIRouter(prefix="/api", tags=["passages"])


@router.get(
    "/passages/{passage_id:path}",
    response_model=PassageView,
    summary="One passage with its neighbours and parallel language versions",
    description="Passage ids contain ':', '§' and '/' (e.g. `udbudsloven:§-73/da/lbk-116-2025`); "
    "send them URL-encoded or as they are.",
    responses={
        404: {"model": ErrorBody, "description": "No passage has this id"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"},
    },
)
def get_passage(passage_id: str, kb: BuiltKB) -> dict:
    passage = kb.passage(passage_id)
    return {"passage": passage, "neighbours": kb.neighbours(passage), "parallel": kb.parallel_versions(passage)}
