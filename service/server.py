"""Run the service with uvicorn; each worker process builds its own app through the factory.

With `--workers N` the workers share one store: a Chroma server (`KB_CHROMA_URL`), or the embedded one in
`KB_DATA_DIR`. Each keeps the keyword index and catalog read-only in memory and reloads them when an ingest
has written a new index stamp (`KnowledgeBase.reload_if_changed`, checked on every request), so an ingest
reaches every worker without a restart.
"""

from __future__ import annotations

import sys

import uvicorn

from kb.settings import get_settings
from service.logging_config import log_config

APP_FACTORY = "service.app:create_app"


def run(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    settings = get_settings()
    service = settings.service
    store = f"the Chroma server at {settings.chroma_url}" if settings.chroma_url else f"the embedded store in {settings.chroma_dir}"
    sys.stderr.write(f"serving {settings.data_dir} with {workers} worker(s) from {store}\n")
    # Behind trusted reverse proxies uvicorn's ProxyHeadersMiddleware puts the client's own address in the
    # ASGI scope, which the rate limit keys on; otherwise X-Forwarded-For, which anyone can send, is ignored.
    proxies = ",".join(service.forwarded_allow_ips)
    # the access log drops query strings (search text) unless KB_LOG_QUESTIONS=true: service/logging_config.py
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        log_config=log_config(service.log_questions),
    )
