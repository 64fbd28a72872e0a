"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates fused by reciprocal rank.

Reciprocal rank fusion (Cormack et al. 2009) adds 1/(k + rank) over the
lists a passage appears in. We fuse by passage id rather than with
llama-index's `QueryFusionRetriever`, which keys nodes by content hash and so
cannot match the same passage coming from two different stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Fused:
    """A passage id with its fused score and its rank in each list (None where absent)."""

    passage_id: str
    score: float
    ranks: dict[str, int | None] = field(default_factory=dict)


def reciprocal_rank_fusion(
    ranked: dict[str, Sequence[str]], k: int = 60, weights: dict[str, float] | None = None
) -> list[Fused]:
    """Fuse ranked id lists (name -> ids, best first) into one list, best first."""
    weights = weights or {}
    fused: dict[str, Fused] = {}
    for name, ids in ranked.items():
        weight = weights.get(name, 1.0)
        for rank, passage_id in enumerate(ids, start=1):
            entry = fused.setdefault(passage_id, Fused(passage_id, 0.0, {n: None for n in ranked}))
            if entry.ranks[name] is None:
                entry.ranks[name] = rank
                entry.score += weight / (k + rank)
    return sorted(fused.values(), key=lambda f: (-f.score, f.passage_id))
