"""Run the service with uvicorn; each worker process builds its own app through the factory."""

from __future__ import annotations

import uvicorn

APP_FACTORY = "service.app:create_app"


def run(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, proxy_headers=False)
