"""GET /api/documents: the documents the knowledge base holds."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import BuiltKB
from service.schemas import DocumentOut, ErrorBody

router = APIRouter(prefix="/api", tags=["documents"])


@router.get(
    "/documents",
    response_model=list[DocumentOut],
    summary="Documents with their versions and passages per language",
    responses={503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"}},
)
def list_documents(kb: BuiltKB) -> list[dict]:
    return [{"doc_id": doc_id, **doc} for doc_id, doc in kb.stats()["documents"].items()]
