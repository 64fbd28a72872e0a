"""GET /api/passages/{passage_id}: a passage, its neighbours and its parallel versions in other languages."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter

from ingest.manifest import ManifestError, load_manifest
from kb.passage import Passage
from service.deps import BuiltKB
from service.schemas import ErrorBody, PassageView

router = APIRouter(prefix="/api", tags=["passages"])


@lru_cache(maxsize=4)
def _danish_titles(manifest: Path, mtime: float) -> dict[str, str]:
    """doc id -> the Danish texts' title (`title_da` in the manifest), read once per manifest version."""
    try:
        return {d.doc_id: d.title_da for d in load_manifest(manifest).documents if d.title_da}
    except ManifestError:
        return {}


def titled(passage: Passage, titles: dict[str, str]) -> Passage:
    """The passage with its document's title in the passage's own language, where the manifest has it.

    Why here and not in the record: the passages carry the document's one title, and a record change forces a
    re-ingest; the manifest's `title_da` is read when the passage is shown."""
    if passage.language == "da" and passage.doc_id in titles:
        return passage.model_copy(update={"title": titles[passage.doc_id]})
    return passage


@router.get(
    "/passages/{passage_id:path}",
    response_model=PassageView,
    summary="One passage with its neighbours and parallel language versions",
    description="Passage ids contain ':', '§' and '/' (e.g. `udbudsloven:§-73/da/lbk-116-2025`); "
    "send them URL-encoded or as they are. A Danish text's title is its Danish title where the manifest has one.",
    responses={
        404: {"model": ErrorBody, "description": "No passage has this id"},
        503: {"model": ErrorBody, "description": "The knowledge base is not built: run `kb ingest`"},
    },
)
def get_passage(passage_id: str, kb: BuiltKB) -> dict:
    manifest = kb.settings.manifest_path
    titles = _danish_titles(manifest, manifest.stat().st_mtime if manifest.exists() else 0.0)
    passage = kb.passage(passage_id)
    return {
        "passage": titled(passage, titles),
        "neighbours": [titled(p, titles) for p in kb.neighbours(passage)],
        "parallel": [titled(p, titles) for p in kb.parallel_versions(passage)],
    }
