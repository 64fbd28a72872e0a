"""GET /api/search: ranked passages for a query (clause lookup)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator

from kb.errors import InvalidFilterError
from kb.asking import MAX_QUESTION_CHARS
from kb.versions import search_changed
from service.deps import BuiltKB
from service.schemas import ErrorBody, SearchHitOut

router = APIRouter(prefix="/api", tags=["search"])


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("the query is empty")
    return value


@router.get(
    "/search",
    response_model=list[SearchHitOut],
    summary="Hybrid search over the passages in force",
    responses={
        422: {"model": ErrorBody, "description": "Empty query, k out of range, unknown doc, kind or lang"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"},
    },
)
def search(
    kb: BuiltKB,
    response: Response,
    q: Annotated[
        str,
        Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="What to look for, in Danish or English"),
        AfterValidator(_not_blank),
    ],
    doc: Annotated[str | None, Query(description="Only this doc id, e.g. udbudsloven, ai-act")] = None,
    kind: Annotated[
        str | None, Query(description="Only this kind: regulation, directive, act, contract, guidance")
    ] = None,
    lang: Annotated[str | None, Query(description="Only passages in this language: da, en")] = None,
    k: Annotated[int, Query(ge=1, le=50, description="How many passages")] = 10,
    changed_since: Annotated[
        date | None,
        Query(description="Only provisions an amendment applying from this date on changed, e.g. 2026-01-01"),
    ] = None,
) -> list[dict]:
    try:
        if changed_since is not None:
            hits = search_changed(kb, q, changed_since, k=k, doc=doc, kind=kind, language=lang)
        else:
            hits = kb.search(q, k=k, doc=doc, kind=kind, language=lang)
    except InvalidFilterError as exc:
        if exc.field == "language":  # the core's name for what this endpoint calls `lang`
            raise InvalidFilterError("lang", exc.value, exc.valid) from exc
        raise
    missing = kb.not_embedded()
    if missing:  # the list stays a list: a build still embedding is said in headers (texts found by keyword only)
        response.headers["X-KB-Partial"] = "true"
        response.headers["X-KB-Not-Embedded"] = ",".join(missing)
    return [hit.summary() for hit in hits]
