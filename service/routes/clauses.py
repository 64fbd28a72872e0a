"""/api/clauses: the clause finder's search (filtered by document, kind, language and scenario) and
`GET /api/clauses/{ref}`, one provision with what it cites, what cites it and the most similar provisions in the
other documents (kb/clauses.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from kb.clauses import clause_view
from kb.vocabulary import LAW_KINDS
from kb.errors import InvalidFilterError
from kb.asking import MAX_QUESTION_CHARS, check_language
from kb.references import parse_reference
from service.deps import BuiltKB
from service.errors import error_response
from service.schemas import ClauseHitOut, ClauseView, ErrorBody

router = APIRouter(prefix="/api", tags=["clauses"])

# The clause finder's kind filter: the three groups a procurement officer thinks in, and the kinds of each.
KIND_GROUPS: dict[str, tuple[str, ...]] = {"law": LAW_KINDS, "contract": ("contract",), "guidance": ("guidance",)}
CANDIDATES = 50


@router.get(
    "/clauses/{ref:path}",
    response_model=ClauseView,
    summary="A provision with its language versions, its references both ways and similar provisions elsewhere",
    description="`ref` is a citation reference such as `ai-act:art-26`, `udbudsloven:§-73` or "
    "`erst-it-rammeaftale:section-16.1`; the view holds every passage in force at or below it.",
    responses={
        404: {"model": ErrorBody, "description": "The knowledge base holds no provision under this reference"},
        422: {"model": ErrorBody, "description": "Not a reference, or an unknown language"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"},
    },
)
async def get_clause(
    ref: str,
    kb: BuiltKB,
    lang: Annotated[str, Query(description="Language to show the provision in: da or en")] = "da",
    similar: Annotated[int, Query(ge=0, le=20, description="How many similar provisions from other documents")] = 5,
) -> Any:
    try:
        parse_reference(ref)
    except ValueError as exc:
        return error_response(422, "invalid_ref", str(exc), field="ref")
    try:
        check_language(lang)
    except InvalidFilterError as exc:  # the core's name for what this endpoint calls `lang`
        raise InvalidFilterError("lang", exc.value, exc.valid) from exc
    view = await run_in_threadpool(clause_view, kb, ref, lang, similar)
    if view is None:
        return error_response(404, "unknown_reference", f"no provision in force under {ref!r}", field="ref")
    return view


@router.get(
    "/clauses",
    response_model=list[ClauseHitOut],
    summary="Find clauses: search filtered by document, kind (law, contract, guidance), language and scenario",
    description="`scenario` keeps the provisions that typically matter in that scenario (its profile) and the "
    "organisation's own documents tagged with it at upload. "
    "The search is the same hybrid search as `/api/search`, over its best 50 candidates (with `scenario`, the search "
    "runs within the profile).",
    responses={
        422: {"model": ErrorBody, "description": "Empty query, unknown doc, kind, lang or scenario"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"},
    },
)
async def find_clauses(
    kb: BuiltKB,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="Words or a reference to find")],
    doc: Annotated[str | None, Query(description="Only this doc id, e.g. udbudsloven")] = None,
    kind: Annotated[
        str | None, Query(description="law, contract or guidance (or a precise kind: regulation, directive, act)")
    ] = None,
    lang: Annotated[str | None, Query(description="Only passages in this language: da, en")] = None,
    scenario: Annotated[
        str | None, Query(description="Only provisions of this scenario's profile, and uploads tagged with it")
    ] = None,
    k: Annotated[int, Query(ge=1, le=CANDIDATES, description="How many clauses")] = 20,
) -> Any:
    from kb.scenarios import load_scenarios

    if not q.strip():
        return error_response(422, "invalid_q", "the query is empty", field="q")
    kinds = sorted({d["kind"] for d in kb.catalog["documents"].values()})
    if kind is not None and kind not in KIND_GROUPS and kind not in kinds:
        return error_response(422, "invalid_kind", f"unknown kind {kind!r}", field="kind", valid=list(dict.fromkeys([*KIND_GROUPS, *kinds])))
    scenarios = list(load_scenarios())
    if scenario is not None and scenario not in scenarios:
        return error_response(
            422, "invalid_scenario", f"unknown scenario {scenario!r}", field="scenario", valid=scenarios
        )
    wanted = KIND_GROUPS.get(kind or "", (kind,) if kind else None)
    exact = kind if kind is not None and kind not in KIND_GROUPS else None
    profile = kb.scenario_profile(scenario) if scenario else None
    try:
        hits = await run_in_threadpool(kb.search, q, k=CANDIDATES, doc=doc, kind=exact, language=lang, within=profile)
    except InvalidFilterError as exc:
        if exc.field == "language":
            raise InvalidFilterError("lang", exc.value, exc.valid) from exc
        raise
    kept = [h for h in hits if wanted is None or h.passage.kind in wanted]
    return [{**h.summary(), "kind": h.passage.kind} for h in kept[:k]]
