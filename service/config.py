"""Settings of the HTTP service alone (the knowledge base's own live in kb/settings.py)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from kb.settings import EnvSettings

from ingest.uploads.checks import UploadLimits


class ServiceSettings(EnvSettings):
    """Read from `KB_`-prefixed environment variables (and `.env`), like the knowledge base's settings."""

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

    @property
    def upload_limits(self) -> UploadLimits:
        """The three upload limits, as the upload checks take them."""
        return UploadLimits(self.upload_max_bytes, self.upload_max_uncompressed_bytes, self.upload_max_pages)

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
