"""POST /api/memo: an answer as a memo to file (DOCX): the question, the date, the scenario, the answer's parts with
their quotes, and numbered references to the provisions with their versions.

The answer is asked again here rather than taken from the client: a memo holds what the knowledge base says, not
what a page sent back."""

from __future__ import annotations

import io
import re
from datetime import date

from docx import Document
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from kb.answer import Answer, Citation
from service.deps import BuiltKB
from service.routes.contract import DOCX_TYPE
from service.schemas import AskRequest, ErrorBody

router = APIRouter(prefix="/api", tags=["memo"])

WORDS = {
    "da": {
        "title": "Notat",
        "question": "Spørgsmål",
        "date": "Dato",
        "scenario": "Scenarie",
        "answer": "Svar",
        "references": "Henvisninger",
        "declined": "Vidensbasen besvarer ikke spørgsmålet; nærmeste passager:",
        "source": "Kilde: vidensbasen om indkøb af klinisk AI; citaterne er ordret fra de angivne tekster.",
    },
    "en": {
        "title": "Memo",
        "question": "Question",
        "date": "Date",
        "scenario": "Scenario",
        "answer": "Answer",
        "references": "References",
        "declined": "The knowledge base does not answer the question; nearest passages:",
        "source": "Source: the knowledge base on procuring clinical AI; the quotes are verbatim from the texts named.",
    },
}
_MARKS = r"(?:\s*\[\d+\])+\s*$"
# characters XML 1.0 (and so a .docx) cannot hold; a question may carry them (a control character, a lone BOM)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(value: object) -> object:
    """`value` with every string in it cleared of characters a Word document cannot hold."""
    if isinstance(value, str):
        return _NOT_XML.sub("", value)
    if isinstance(value, list):
        return [_xml_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _xml_safe(v) for k, v in value.items()}
    return value


class MemoRequest(AskRequest):
    """The question as for /api/ask; the memo is the answer it gets."""


def reference_line(c: Citation) -> str:
    """`[n] ref – heading. title, version (language). url`: what a reader needs to find the provision again."""
    version = ", ".join(part for part in (c.version, c.version_note) if part)
    line = f"[{c.n}] {c.ref} – {c.heading}. {c.title}, {version} ({c.language})"
    return line + (f". {c.url}" if c.url else "")


def memo_docx(answer: Answer, today: date) -> bytes:
    """The memo as a Word document: each quoted line in style Quote with its references after it."""
    answer = Answer.model_validate(_xml_safe(answer.model_dump()))
    words = WORDS.get(answer.language, WORDS["en"])
    document = Document()
    quote_style = document.styles["Quote"]
    document.core_properties.title = f"{words['title']}: {answer.question}"[:255]  # Word holds 255 characters here
    document.core_properties.language = answer.language
    document.add_heading(words["title"], level=0)
    header = [(words["question"], answer.question), (words["date"], today.isoformat())]
    header.append((words["scenario"], answer.scenario.label))
    for label, value in header:
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    by_number = {c.n: c for c in answer.citations}
    if answer.abstained:
        document.add_paragraph(words["declined"])
        for c in answer.see_also:
            document.add_paragraph(f"{c.ref} – {c.heading} ({c.version})", style="List Bullet")
    for section in answer.sections:
        if section.kind == "sources":
            continue  # the numbered references below
        document.add_heading(section.heading or words["answer"], level=1)
        for line in filter(str.strip, section.text.splitlines()):
            marks = re.search(_MARKS, line)
            if not marks:
                document.add_paragraph(line)
                continue
            document.add_paragraph(line[: marks.start()].strip(), style=quote_style)
            cited = [by_number[int(n)] for n in re.findall(r"\d+", marks.group()) if int(n) in by_number]
            sources = "; ".join(f"[{c.n}] {c.ref} ({c.version})" for c in cited)
            document.add_paragraph().add_run(f"— {sources}").italic = True
    for note in answer.notes:  # law-in-force: which wording of an amended provision is quoted
        document.add_paragraph().add_run(note).italic = True
    if answer.citations:
        document.add_heading(words["references"], level=1)
        for c in answer.citations:
            document.add_paragraph(reference_line(c))
    document.add_paragraph().add_run(words["source"]).italic = True
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@router.post(
    "/memo",
    response_class=Response,
    summary="The answer to a question as a memo to file (.docx)",
    responses={
        200: {"content": {DOCX_TYPE: {}}, "description": "The memo (.docx)"},
        422: {"model": ErrorBody, "description": "As /api/ask"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built or not calibrated"},
    },
)
async def memo(body: MemoRequest, kb: BuiltKB) -> Response:
    answer = await run_in_threadpool(
        kb.ask, body.question, scenario=body.scenario, language=body.language, top_k=body.top_k, as_of=body.as_of
    )
    filename = "notat.docx" if answer.language == "da" else "memo.docx"
    disposition = f'attachment; filename="{filename}"'
    return Response(memo_docx(answer, date.today()), media_type=DOCX_TYPE, headers={"Content-Disposition": disposition})
