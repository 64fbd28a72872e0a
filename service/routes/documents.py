"""/api/documents: the documents the knowledge base holds, and an organisation's own documents taken in and removed.

Writes (POST, DELETE) need an API key with write rights, checked before the body
is read (service/auth.py), and are written to the audit log (service/audit.py).
The upload flow itself, audit included, is ingest/uploads/service.py: an upload is checked whole before
anything is kept, then embedded by the process's upload worker (service/upload_worker.py), one after another;
`GET /api/documents/{doc_id}` shows how far it got.
At startup the router finishes uploads and deletions a killed process left behind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Path, Request, Response, UploadFile

from ingest.uploads.checks import DOC_ID_PATTERN, UploadLimits
from ingest.uploads.registry import Uploads, describe
from ingest.uploads.service import DocumentFields, UploadService
from kb.knowledge_base import KnowledgeBase
from kb.vocabulary import Jurisdiction, Kind, Language, ScenarioId
from service.auth import AuthFirstRoute, WriteKey, audit_log
from kb.settings import ServiceSettings
from service.deps import KB, BuiltKB
from service.errors import ApiError, upload_status
from service.schemas import DocumentDeletedOut, DocumentOut, DocumentStatusOut, ErrorBody
from service.upload_worker import IngestJob, UploadWorker

log = logging.getLogger("service")


@asynccontextmanager
async def _finish_pending(app: FastAPI) -> AsyncIterator[None]:
    """Uploads a killed process left queued, half-ingested or half-deleted are finished in the background."""
    kb: KnowledgeBase | None = getattr(app.state, "kb", None)
    if kb is not None and Uploads(kb.settings.data_dir).all():
        settings: ServiceSettings = app.state.service_settings
        service = UploadService(kb, UploadLimits.of(settings))

        def run() -> None:
            try:
                done = service.resume()
                if done:
                    log.info("finished pending uploads: %s", ", ".join(done))
            except Exception:  # the records keep their state; the next start tries again
                log.exception("could not finish the pending uploads")

        _upload_worker(app).submit(run)  # first in the queue: before any upload of this process
    yield


def _upload_worker(app: FastAPI) -> UploadWorker:
    """The process's upload worker (service/upload_worker.py), made on first use."""
    worker = getattr(app.state, "upload_worker", None)
    if worker is None:
        worker = app.state.upload_worker = UploadWorker()
    return worker


router = APIRouter(prefix="/api", tags=["documents"], route_class=AuthFirstRoute, lifespan=_finish_pending)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or not a valid one (missing_api_key, invalid_api_key)"},
    403: {"model": ErrorBody, "description": "The API key may only read (read_only_key)"},
}


@router.get(
    "/documents",
    response_model=list[DocumentOut],
    summary="Documents with their versions and passages per language",
    responses={503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"}},
)
def list_documents(kb: BuiltKB) -> list[dict]:
    return [{"doc_id": doc_id, **doc} for doc_id, doc in kb.stats()["documents"].items()]


def _uploads(request: Request, kb: KnowledgeBase) -> UploadService:
    """The upload service of this request: the service's limits, its audit log with the status of each answer."""
    settings: ServiceSettings = request.app.state.service_settings
    return UploadService(kb, UploadLimits.of(settings), audit_log(request), status_of=upload_status)


@router.post(
    "/documents",
    status_code=202,
    response_model=DocumentStatusOut,
    response_model_exclude_none=True,
    summary="Take in an organisation's own document (PDF, DOCX, Markdown, HTML, Formex XML)",
    description="The file is checked whole before anything is kept: size, type against content, encryption, "
    "decompression bombs, XML entities, scripts, UTF-8, file name, doc id; then it is split into passages and "
    "embedded in the background (202). Follow `Location` (GET /api/documents/{doc_id}) for its status.",
    responses={
        **_ERRORS,
        409: {"model": ErrorBody, "description": "The doc id is a corpus document's or already uploaded (doc_id_taken)"},
        413: {"model": ErrorBody, "description": "The file is larger than KB_UPLOAD_MAX_BYTES (file_too_large)"},
        415: {"model": ErrorBody, "description": "Unsupported type, or a type that does not match the content"},
        422: {"model": ErrorBody, "description": "A field is invalid, or the file is unreadable, encrypted or hostile"},
    },
)
def upload_document(
    request: Request,
    response: Response,
    kb: KB,
    caller: WriteKey,
    file: Annotated[UploadFile, File(description="The document: .pdf, .docx, .md, .html or Formex .xml")],
    doc_id: Annotated[str, Form(pattern=DOC_ID_PATTERN, description="New lowercase id, e.g. 'rh-ai-indkoebspolitik'")],
    title: Annotated[str, Form(min_length=1, max_length=300, description="The document's title")],
    kind: Annotated[Kind, Form(description="What the document is")],
    language: Annotated[Language, Form(description="The document's language")],
    jurisdiction: Annotated[Jurisdiction, Form(description="Whose rules it states")] = "DK",
    scenarios: Annotated[list[ScenarioId] | None, Form(description="Scenarios it matters in (repeat the field)")] = None,
) -> dict[str, Any]:
    service = _uploads(request, kb)
    fields = DocumentFields(doc_id, title, kind, language, jurisdiction, tuple(scenarios or ()))
    # a refusal is an UploadError: the one handler answers it with its code's status (service/errors.py)
    record, passages = service.accept(
        file.file, filename=file.filename, content_type=file.content_type, fields=fields, who=caller.name
    )
    _upload_worker(request.app).submit(IngestJob(service, record.doc_id, passages))
    response.headers["Location"] = f"/api/documents/{record.doc_id}"
    return describe(record)


DocIdPath = Annotated[str, Path(min_length=1, max_length=200, description="The document's id")]


def _corpus_document(kb: KnowledgeBase, doc_id: str) -> dict[str, Any] | None:
    try:
        documents = kb.stats()["documents"]
    except Exception:  # noqa: BLE001 - an unbuilt knowledge base holds no corpus documents
        return None
    doc = documents.get(doc_id)
    if doc is None or doc.get("origin") == "upload":
        return None
    return {
        "doc_id": doc_id,
        "title": doc["title"],
        "kind": doc["kind"],
        "origin": "corpus",
        "status": "ready",
        "passages": sum(doc["passages"].values()),
    }


@router.get(
    "/documents/{doc_id}",
    response_model=DocumentStatusOut,
    response_model_exclude_none=True,
    summary="A document's status: an upload's progress (queued, ingesting, ready, failed) and passage count",
    responses={404: {"model": ErrorBody, "description": "No document has this id (unknown_document)"}},
)
def document_status(kb: KB, doc_id: DocIdPath) -> dict[str, Any]:
    record = Uploads(kb.settings.data_dir).get(doc_id)
    if record is not None:
        return describe(record)
    corpus = _corpus_document(kb, doc_id)
    if corpus is None:
        raise ApiError(404, "unknown_document", f"no document with id {doc_id!r}", field="doc_id")
    return corpus


@router.delete(
    "/documents/{doc_id}",
    response_model=DocumentDeletedOut,
    summary="Remove an uploaded document and every passage of it",
    responses={
        **_ERRORS,
        404: {"model": ErrorBody, "description": "No uploaded document has this id (unknown_document)"},
        409: {"model": ErrorBody, "description": "A corpus document: change the manifest instead (corpus_document)"},
    },
)
def remove_document(request: Request, kb: KB, caller: WriteKey, doc_id: DocIdPath) -> dict[str, Any]:
    removed = _uploads(request, kb).delete(doc_id, caller.name)
    return {"doc_id": doc_id, "deleted": True, "passages_removed": removed}
