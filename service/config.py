"""Settings of the HTTP service alone (the knowledge base's own live in kb/settings.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Read from `KB_`-prefixed environment variables (and `.env`), like the knowledge base's settings."""

    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (KB_CORS_ORIGINS, comma-separated); default none.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value
