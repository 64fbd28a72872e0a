"""A test-only app for `uvicorn --factory tests.hostile_app:create_app`: the service with a route that raises.

The service has no route that fails on purpose; a forced 500 is what shows that an unexpected error still leaves
with the security headers and CORS (tests/test_hostile_requests.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from service.app import create_app as create_service_app

RAISING_PATH = "/api/test/raise"
RAISED = "deliberately raised by the test app"


def create_app() -> FastAPI:
    app = create_service_app()

    @app.get(RAISING_PATH, include_in_schema=False)
    def raise_unexpected() -> None:
        raise RuntimeError(RAISED)

    return app
