"""The roadmap from need to operation: its questions, the roadmap for a scenario and answers, and the `/roadmap` page.

The rules and their evaluation live in kb/roadmap.py; this module only checks the request and calls it. Its input
errors (`RoadmapInputError`) reach the one handler (service/errors.py): 422 naming the valid values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from kb.roadmap import build_roadmap, questions_for
from kb.scenarios import scenario_label
from kb.vocabulary import SCENARIO_IDS, Language
from service.deps import KB
from service.schemas import ErrorBody, RequestBody

router = APIRouter(tags=["roadmap"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


# --- bodies ------------------------------------------------------------------------


class RoadmapRequest(RequestBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "scenario": "loesning",
                    "answers": {"medical_purpose": "yes", "device_class": "iia", "contract_value": "above_threshold"},
                    "language": "en",
                }
            ]
        },
    )

    scenario: str = Field(description=f"One of {', '.join(SCENARIO_IDS)}")
    answers: dict[str, str] = Field(
        default_factory=dict,
        description="Answers so far, question key -> option value ('unknown' for a question the asker cannot answer)",
    )
    language: Language = Field(default="da", description="Language of the texts: da or en")


class OptionOut(BaseModel):
    value: str
    label: str


class QuestionOut(BaseModel):
    key: str
    text: str
    help: str
    options: list[OptionOut]
    refs: list[str] = Field(description="The provisions the question turns on")
    ask_when: dict[str, list[str]] = Field(description="Asked only once these answers are known to hold")
    value: dict[str, str] | None = Field(default=None, description="What the scenario already answers: {value, source}")


class CitedOut(BaseModel):
    ref: str
    doc_id: str
    passage_id: str | None = Field(description="A passage of the reference in the knowledge base; null where it holds none")
    title: str | None
    heading: str | None
    language: str | None


class StepOut(BaseModel):
    id: str
    title: str
    what: str
    who: Literal["buyer", "vendor", "both"]
    refs: list[CitedOut] = Field(description="Why: the provisions the step rests on")
    clauses: list[CitedOut] = Field(description="Contract clauses to put in place (MCC-AI, ERST contract package)")
    open: bool = Field(description="True when the step depends on a question not answered yet")
    depends_on: list[str] = Field(description="The unanswered questions an open step depends on")
    when: dict[str, list[str]] = Field(description="The condition of the rule")


class PhaseOut(BaseModel):
    id: str
    title: str
    steps: list[StepOut]


class QuestionsOut(BaseModel):
    scenario: str
    scenario_label: str
    language: str
    questions: list[QuestionOut]


class RoadmapOut(BaseModel):
    scenario: str
    scenario_label: str
    language: str
    answers: dict[str, dict[str, str]] = Field(description="Every known answer with its source: answer, scenario or derived")
    questions: list[QuestionOut] = Field(description="The next questions to ask, in order")
    phases: list[PhaseOut]


_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "Unknown scenario, question key or answer value; `valid` lists the valid ones"}
}


# --- routes ------------------------------------------------------------------------


@router.get(
    "/api/roadmap/questions",
    response_model=QuestionsOut,
    summary="The questions of the procurement roadmap for a scenario",
    responses=_ERRORS,
)
def roadmap_questions(
    scenario: Annotated[str, Query(description=f"One of {', '.join(SCENARIO_IDS)}")],
    lang: Annotated[Language, Query(description="Language of the texts: da or en")] = "da",
) -> Any:
    questions = questions_for(scenario, lang)
    return {"scenario": scenario, "scenario_label": scenario_label(scenario, lang), "language": lang, "questions": questions}


@router.post(
    "/api/roadmap",
    response_model=RoadmapOut,
    summary="The roadmap from need to operation for a scenario and the answers so far",
    description="Steps that depend on an unanswered question are included with `open: true`, so an unknown "
    "answer shows both branches. Cited references are resolved to passages where the knowledge base holds them.",
    responses=_ERRORS,
)
def roadmap(request: RoadmapRequest, kb: KB) -> Any:
    return build_roadmap(request.scenario, request.answers, request.language, kb=kb)


@router.get("/roadmap", include_in_schema=False)
def roadmap_page() -> FileResponse:
    """The guided roadmap page (Danish and English, `?lang=`)."""
    return FileResponse(STATIC_DIR / "roadmap.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
