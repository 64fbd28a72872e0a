"""One router per resource; `ROUTERS` is what the app includes."""

from __future__ import annotations

from service.routes import ask, clauses, contract, documents, health, memo, pages, passages, roadmap, scenarios, search

ROUTERS = [
    ask.router,
    search.router,
    passages.router,
    clauses.router,
    documents.router,
    roadmap.router,
    contract.router,
    memo.router,
    scenarios.router,
    health.router,
    pages.router,
]
