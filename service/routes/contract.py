"""The contract draft for a scenario: as JSON (`POST /api/contract`), as a Word document (`GET /api/contract.docx`)
and as Markdown (`GET /api/contract.md`), and the `/contract` page.

The rules, the engine and the renderers live in kb/contract.py; this module only reads the request, calls them and
turns their input errors into the one error shape (422 naming the field and the valid values, with the roadmap's codes).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kb.contract import build_contract, contract_docx, contract_markdown
from kb.vocabulary import SCENARIO_IDS, Language
from service.deps import KB
from service.errors import error_response
from service.routes.roadmap import STATIC_DIR, QuestionOut
from service.schemas import ErrorBody

router = APIRouter(tags=["contract"])

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class ContractRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "scenario": "loesning",
                    "answers": {"high_risk": "annex_i", "health_data": "vendor_processor"},
                    "language": "en",
                }
            ]
        },
    )

    scenario: str = Field(description=f"One of {', '.join(SCENARIO_IDS)}")
    answers: dict[str, str] = Field(
        default_factory=dict,
        description="The roadmap's answers so far, question key -> option value ('unknown' keeps both variants, marked open)",
    )
    language: Language = Field(default="da", description="Language of the draft: da or en")


class FillInOut(BaseModel):
    text: str = Field(description="The placeholder or choice as it stands in the clause, e.g. [NAME OF PUBLIC ORGANISATION]")
    kind: Literal["placeholder", "option"]
    refs: list[str] | None = Field(default=None, description="The clauses it occurs in (section level)")


class QuotedPassageOut(BaseModel):
    passage_id: str
    ref: str
    text: str = Field(description="The passage text, exactly as the knowledge base holds it")


class ClauseOut(BaseModel):
    ref: str
    doc_id: str
    title: str | None
    heading: str | None
    language: str | None = Field(description="Language of the quote; null where the knowledge base holds no passage")
    in_language: bool | None = Field(description="False when quoted in its own language because the asked one does not exist")
    version: str | None
    passages: list[QuotedPassageOut]
    fill_ins: list[FillInOut]
    when: dict[str, list[str]]
    open: bool
    depends_on: list[str]


class ProvisionOut(BaseModel):
    ref: str
    doc_id: str
    passage_id: str | None = Field(description="The provision's first passage; null where the knowledge base holds none")
    title: str | None
    heading: str | None
    language: str | None
    version: str | None
    when: dict[str, list[str]]
    open: bool
    depends_on: list[str]


class SectionOut(BaseModel):
    id: str
    title: str
    settles: str = Field(description="What the section settles")
    clauses: list[ClauseOut]
    provisions: list[ProvisionOut] = Field(description="The provisions of law behind the section")
    fill_ins: list[FillInOut] = Field(description="What the buyer must fill in or choose, from the clauses' own text")
    when: dict[str, list[str]]
    open: bool = Field(description="True when the section depends on a question not answered yet")
    depends_on: list[str]


class VersionOut(BaseModel):
    doc_id: str
    title: str
    language: str
    version: str


class ContractOut(BaseModel):
    scenario: str
    scenario_label: str
    language: str
    answers: dict[str, dict[str, str]] = Field(description="Every known answer with its source: answer, scenario or derived")
    questions: list[QuestionOut] = Field(description="The roadmap's questions still to answer, in order")
    sections: list[SectionOut]
    versions: list[VersionOut] = Field(description="The versions of the texts the draft quotes and cites")


_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "Unknown scenario, question key or answer value; `valid` lists the valid ones"}
}


def _answers(items: list[str]) -> dict[str, str] | JSONResponse:
    answers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            return error_response(422, "invalid_request", f"answer must be key=value, not {item!r}", field="answer")
        answers[key.strip()] = value.strip()
    return answers


ScenarioQuery = Annotated[str, Query(description=f"One of {', '.join(SCENARIO_IDS)}")]
AnswerQuery = Annotated[
    list[str], Query(description="An answer as key=value, repeatable: `answer=high_risk=annex_i&answer=health_data=no`")
]
LangQuery = Annotated[Language, Query(description="Language of the draft: da or en")]


def _draft(kb: Any, scenario: str, answer: list[str], lang: str) -> dict[str, Any] | JSONResponse:
    answers = _answers(answer)
    if isinstance(answers, JSONResponse):
        return answers
    return build_contract(scenario, answers, lang, kb=kb)


def _filename(draft: dict[str, Any], extension: str) -> str:
    return f'attachment; filename="contract-{draft["scenario"]}-{draft["language"]}.{extension}"'


@router.post(
    "/api/contract",
    response_model=ContractOut,
    summary="The contract draft for a scenario and the roadmap's answers so far",
    description="Sections in order, each with its model clauses quoted from the knowledge base (in the asked language "
    "where the text exists, else in its own, marked), the provisions behind it and what the buyer fills in. A section or "
    "clause that depends on an unanswered question is kept with `open: true`, so both variants show.",
    responses=_ERRORS,
)
def contract(request: ContractRequest, kb: KB) -> Any:
    return build_contract(request.scenario, request.answers, request.language, kb=kb)


@router.get(
    "/api/contract.docx",
    summary="The contract draft as a Word document",
    response_class=Response,
    responses={200: {"content": {DOCX_TYPE: {}}, "description": "The draft (.docx)"}, **_ERRORS},
)
def contract_as_docx(kb: KB, scenario: ScenarioQuery, answer: AnswerQuery = [], lang: LangQuery = "da") -> Response:  # noqa: B006 - FastAPI reads the default
    draft = _draft(kb, scenario, answer, lang)
    if isinstance(draft, JSONResponse):
        return draft
    return Response(contract_docx(draft), media_type=DOCX_TYPE, headers={"Content-Disposition": _filename(draft, "docx")})


@router.get(
    "/api/contract.md",
    summary="The contract draft as Markdown",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}, "description": "The draft (Markdown)"}, **_ERRORS},
)
def contract_as_markdown(kb: KB, scenario: ScenarioQuery, answer: AnswerQuery = [], lang: LangQuery = "da") -> Response:  # noqa: B006
    draft = _draft(kb, scenario, answer, lang)
    if isinstance(draft, JSONResponse):
        return draft
    return Response(
        contract_markdown(draft), media_type="text/markdown; charset=utf-8", headers={"Content-Disposition": _filename(draft, "md")}
    )


@router.get("/contract", include_in_schema=False)
def contract_page() -> FileResponse:
    """The contract draft page (Danish and English, `?lang=`)."""
    return FileResponse(STATIC_DIR / "contract.html", media_type="text/html; charset=utf-8", headers={"Content-Disposition": "inline", "Cache-Control": "no-cache"})
