"""POST /api/ask: a cited answer tied to a scenario, as JSON or as server-sent events."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from kb.answer import Answer
from service.deps import BuiltKB
from service.schemas import AskRequest, AskResponse, CitationOut, ErrorBody, ScenarioOut, StreamDone

router = APIRouter(prefix="/api", tags=["ask"])

EVENT_STREAM = "text/event-stream"
# A line of the answer is cut where a sentence ends and the next begins with a capital (not before "[n]").
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])(?=\s+[A-ZÆØÅ(«\"])")

_STREAM_DOC = (
    "With `Accept: text/event-stream` the answer comes as server-sent events, in this order: "
    "`scenario` (the scenario object), `citations` (the list), one or more `answer` events `{\"text\": piece}` "
    "whose texts joined give the answer, and `done` `{\"abstained\", \"see_also\", \"language\", \"notes\", \"partial\", \"sections\"}`."
)


def answer_pieces(text: str) -> Iterator[str]:
    """The answer in pieces (lines, long lines cut at sentences) that join back to the exact text."""
    pending = ""
    for line in text.splitlines(keepends=True):
        if not line.strip():
            pending += line
            continue
        parts = _SENTENCE_BREAK.split(line)
        for part in parts:
            if pending:
                yield pending
            pending = part
    if pending:
        yield pending


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(answer: Answer) -> AsyncIterator[str]:
    yield _sse("scenario", ScenarioOut.model_validate(answer.scenario.model_dump()).model_dump(mode="json"))
    citations = [CitationOut.model_validate(c.model_dump()).model_dump(mode="json") for c in answer.citations]
    yield _sse("citations", citations)
    for piece in answer_pieces(answer.answer) or [""]:
        yield _sse("answer", {"text": piece})
    see_also = [c.model_dump() for c in answer.see_also]
    sections = [s.model_dump() for s in answer.sections]
    done = StreamDone.model_validate(
        {"abstained": answer.abstained, "see_also": see_also, "language": answer.language, "notes": answer.notes, "partial": answer.partial, "sections": sections}
    )
    yield _sse("done", done.model_dump(mode="json"))


def _wants_stream(request: Request) -> bool:
    return EVENT_STREAM in request.headers.get("accept", "").lower()


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="Answer a question from cited passages",
    description="A cited answer (claims marked [n]) tied to a procurement scenario, or a refusal with the nearest "
    "passages when the knowledge base holds no answer. " + _STREAM_DOC,
    responses={
        200: {"content": {EVENT_STREAM: {"schema": {"type": "string"}}}},
        422: {"model": ErrorBody, "description": "Empty or too long question, unknown scenario or language"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built (run `kb ingest`) or not calibrated"},
    },
)
async def ask(body: AskRequest, request: Request, kb: BuiltKB) -> Any:
    # ask() is synchronous and CPU-bound: off the event loop. Errors surface here, before any event is sent.
    answer = await run_in_threadpool(
        kb.ask, body.question, scenario=body.scenario, language=body.language, top_k=body.top_k, as_of=body.as_of
    )
    if _wants_stream(request):
        return StreamingResponse(
            _events(answer), media_type=EVENT_STREAM, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
    return AskResponse.of(answer)
