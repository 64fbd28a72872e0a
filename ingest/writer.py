"""Writing one set of passages to the store: embed what changed, reuse what is there, delete what is gone.

Both the corpus ingest (ingest/pipeline.py) and the uploads (ingest/uploads/service.py) write through here, so
neither imports the other. Why a rerun converges: passage ids are stable and `write_passages` makes the store hold
exactly the given passages among those a `Match` selects (adding the missing, replacing the changed, deleting the
stale), so repeating a call, or finishing one that was cut off, ends in the same store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from kb.embedding import embed_passages
from kb.knowledge_base import KnowledgeBase
from kb.match import Match
from kb.passage import Passage
from kb.timing import stage

WRITE_BATCH = 256


_DIMS: dict[str, int] = {}


def _dim(kb: KnowledgeBase) -> int:
    """The embedding model's vector length (placeholders must have it), found once per model."""
    model = kb.embedder.model_name
    if model not in _DIMS:
        _DIMS[model] = len(kb.embedder.get_text_embedding("dimension"))
    return _DIMS[model]


def placeholder_vectors(passage_ids: list[str], dim: int) -> np.ndarray:
    """A stand-in vector per passage until it is embedded: random (seeded by the id) so the HNSW graph holds no
    duplicates, and near-orthogonal to every query, so placeholders come last even before dense search skips them."""
    rows = []
    for pid in passage_ids:
        seed = int.from_bytes(hashlib.sha256(pid.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
        rows.append(vector / np.linalg.norm(vector))
    return np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)


def write_passages(
    kb: KnowledgeBase,
    passages: list[Passage],
    scope: Match,
    on_embedded: Callable[[int, int], None] = lambda n, t: None,
    on_start: Callable[[int], None] = lambda n: None,
    batch: int = WRITE_BATCH,
    placeholders: bool = False,
) -> tuple[int, int, int]:
    """Make the store hold exactly `passages` among those `scope` matches: (embedded, reused, removed).

    With `placeholders`, nothing is embedded: a passage with no vector to reuse is stored with a placeholder and
    marked pending (the build's first pass), and the first number counts those; a later call without embeds them.
    """
    store, model = kb.store, kb.embedder.model_name
    with stage("store_lookup"):
        existing = store.hashes(scope)
        pending = set(store.pending(scope)) if existing else set()
    if placeholders:  # a placeholder already stored for the same record is as good as a new one
        todo = [p for p in passages if existing.get(p.passage_id) != p.record_hash(model)]
    else:
        todo = [p for p in passages if existing.get(p.passage_id) != p.record_hash(model) or p.passage_id in pending]
    on_start(len(todo))
    with stage("store_lookup"):
        reusable = store.vectors_for_hashes(sorted({p.content_hash(model) for p in todo})) if todo else {}
    embedded = reused = 0
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        if placeholders:
            have = [p for p in chunk if p.content_hash(model) in reusable]
            held = [p for p in chunk if p.content_hash(model) not in reusable]
            with stage("store_placeholders"):
                if have:
                    store.add(have, np.stack([reusable[p.content_hash(model)] for p in have]), model)
                if held:
                    store.add(held, placeholder_vectors([p.passage_id for p in held], _dim(kb)), model, pending=True)
            embedded, reused = embedded + len(held), reused + len(have)
            continue
        # identical texts (another version, a piece repeated) embed once
        need = list({p.content_hash(model): p for p in chunk if p.content_hash(model) not in reusable}.values())
        size = kb.settings.embed_batch_size
        for first in range(0, len(need), size):  # batch by batch, so the progress moves as the encoder does
            part = need[first : first + size]
            with stage("embed"):
                vectors = embed_passages(kb.embedder, [p.indexed_text for p in part])
            for passage, vector in zip(part, vectors, strict=True):
                reusable[passage.content_hash(model)] = vector
            embedded += len(part)
            on_embedded(len(part), sum(len(p.indexed_text) for p in part) // 4)
        reused += len(chunk) - len(need)
        with stage("store_write"):
            store.add(chunk, np.stack([reusable[p.content_hash(model)] for p in chunk]), model)
    wanted = {p.passage_id for p in passages}
    stale = [pid for pid in existing if pid not in wanted]
    with stage("store_write"):
        store.delete(stale)
    return embedded, reused, len(stale)
