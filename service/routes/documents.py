"""/api/documents: the documents the knowledge base holds, and an organisation's own documents taken in and removed.

Writes (POST, DELETE) need an API key with write rights, checked before the body
is read (service/auth.py), and are written to the audit log (service/audit.py).
An upload is checked whole before anything is kept (ingest/upload.py) and then
embedded by the process's upload worker (service/upload_worker.py), one after another;
`GET /api/documents/{doc_id}` shows how far it got.
At startup the router finishes uploads and deletions a killed process left behind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, File, Form, Path, Request, Response, UploadFile

from ingest.upload import (
    DOC_ID_PATTERN,
    UploadLimits,
    UploadRejected,
    Uploads,
    accept_upload,
    corpus_doc_ids,
    delete_upload,
    describe,
    ingest_upload,
    resume_pending,
)
from kb.knowledge_base import KnowledgeBase
from kb.passage import Passage
from service.audit import AuditLog
from service.auth import AuthFirstRoute, WriteKey, audit_log
from service.config import ServiceSettings
from service.deps import KB, BuiltKB
from service.errors import ApiError
from service.schemas import DocumentDeletedOut, DocumentOut, DocumentStatusOut, ErrorBody
from service.upload_worker import UploadWorker

log = logging.getLogger("service")


@asynccontextmanager
async def _finish_pending(app: FastAPI) -> AsyncIterator[None]:
    """Uploads a killed process left queued, half-ingested or half-deleted are finished in the background."""
    kb: KnowledgeBase | None = getattr(app.state, "kb", None)
    if kb is not None and Uploads(kb.settings.data_dir).all():
        limits = _limits(app.state.service_settings)

        def run() -> None:
            try:
                done = resume_pending(kb, Uploads(kb.settings.data_dir), limits)
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
Kind = Literal["regulation", "directive", "act", "contract", "guidance"]
Scenario = Literal["behov", "prototype", "demo", "loesning"]


def _limits(settings: ServiceSettings) -> UploadLimits:
    return UploadLimits(
        max_bytes=settings.upload_max_bytes,
        max_uncompressed_bytes=settings.upload_max_uncompressed_bytes,
        max_pages=settings.upload_max_pages,
    )


def _rejected(exc: UploadRejected) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc), field=exc.field)


@router.get(
    "/documents",
    response_model=list[DocumentOut],
    summary="Documents with their versions and passages per language",
    responses={503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"}},
)
def list_documents(kb: BuiltKB) -> list[dict]:
    return [{"doc_id": doc_id, **doc} for doc_id, doc in kb.stats()["documents"].items()]


def _ingest_in_background(
    kb: KnowledgeBase, uploads: Uploads, doc_id: str, limits: UploadLimits, audit: AuditLog, passages: list[Passage]
) -> None:
    record = ingest_upload(kb, uploads, doc_id, limits, passages)
    if record is not None and record.status in ("ready", "failed"):
        audit.write(
            who=record.uploaded_by,
            action="ingest",
            outcome=record.status,
            doc_id=doc_id,
            sha256=record.sha256,
            size=record.bytes,
            code="ingest_failed" if record.status == "failed" else None,
        )


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
    language: Annotated[Literal["da", "en"], Form(description="The document's language")],
    jurisdiction: Annotated[Literal["DK", "EU"], Form(description="Whose rules it states")] = "DK",
    scenarios: Annotated[list[Scenario] | None, Form(description="Scenarios it matters in (repeat the field)")] = None,
) -> dict[str, Any]:
    settings: ServiceSettings = request.app.state.service_settings
    limits = _limits(settings)
    uploads = Uploads(kb.settings.data_dir)
    audit = audit_log(request)
    with uploads.staged() as staged:
        size = 0
        try:
            with staged.open("wb") as out:
                while block := file.file.read(1024 * 1024):
                    size += len(block)
                    if size > limits.max_bytes:
                        raise UploadRejected(
                            413,
                            "file_too_large",
                            f"the file is larger than the limit of {limits.max_bytes} bytes (KB_UPLOAD_MAX_BYTES)",
                        )
                    out.write(block)
            record, passages = accept_upload(
                kb,
                uploads,
                staged,
                filename=file.filename,
                content_type=file.content_type,
                doc_id=doc_id,
                title=title,
                kind=kind,
                language=language,
                jurisdiction=jurisdiction,
                scenarios=list(scenarios or []),
                uploaded_by=caller.name,
                limits=limits,
            )
        except UploadRejected as exc:
            audit.write(who=caller.name, action="upload", outcome="rejected", doc_id=doc_id, size=size, status=exc.status, code=exc.code)
            raise _rejected(exc) from None
    audit.write(
        who=caller.name, action="upload", outcome="accepted", doc_id=doc_id, sha256=record.sha256, size=record.bytes, status=202
    )
    job = partial(_ingest_in_background, kb, uploads, record.doc_id, limits, audit, passages)
    _upload_worker(request.app).submit(job)
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
    uploads = Uploads(kb.settings.data_dir)
    audit = audit_log(request)
    record = uploads.get(doc_id)
    if record is None:
        if doc_id in corpus_doc_ids(kb):
            audit.write(who=caller.name, action="delete", outcome="rejected", doc_id=doc_id, status=409, code="corpus_document")
            raise ApiError(
                409, "corpus_document", f"{doc_id!r} is a corpus document: remove it from the manifest instead", field="doc_id"
            )
        audit.write(who=caller.name, action="delete", outcome="rejected", doc_id=doc_id, status=404, code="unknown_document")
        raise ApiError(404, "unknown_document", f"no uploaded document with id {doc_id!r}", field="doc_id")
    try:
        removed = delete_upload(kb, uploads, doc_id)
    except KeyError:  # deleted by another request meanwhile
        raise ApiError(404, "unknown_document", f"no uploaded document with id {doc_id!r}", field="doc_id") from None
    audit.write(
        who=caller.name, action="delete", outcome="deleted", doc_id=doc_id, sha256=record.sha256, size=record.bytes, status=200
    )
    return {"doc_id": doc_id, "deleted": True, "passages_removed": removed}
