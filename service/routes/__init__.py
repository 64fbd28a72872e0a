"""One router per resource; `ROUTERS` is what the app includes."""

from __future__ import annotations

from service.routes import ask, documents, health, passages, scenarios, search

ROUTERS = [ask.router, search.router, passages.router, documents.router, scenarios.router, health.router]
