"""What the routes ask for: the process's knowledge base, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kb.errors import NotBuiltError
from kb.knowledge_base import KnowledgeBase


def get_kb(request: Request) -> KnowledgeBase:
    """The one KnowledgeBase of this process, created at startup (service.app)."""
    return request.app.state.kb


def get_built_kb(kb: Annotated[KnowledgeBase, Depends(get_kb)]) -> KnowledgeBase:
    """The knowledge base, or NotBuiltError (503) when `kb ingest` has not run."""
    if not kb.is_built():
        raise NotBuiltError(str(kb.settings.data_dir))
    return kb


KB = Annotated[KnowledgeBase, Depends(get_kb)]
BuiltKB = Annotated[KnowledgeBase, Depends(get_built_kb)]
