"""All configuration of the service: the only module that reads the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment variables (case-insensitive) and `.env`; see `.env.example` for each one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- serving -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"

    # --- access --------------------------------------------------------------------------
    api_keys: list[SecretStr] = Field(default_factory=list)
    """Bearer keys clients may use (JSON list); only their SHA-256 is kept in memory."""
    api_key_hashes: list[str] = Field(default_factory=list)
    """SHA-256 hex digests of accepted keys, for deployments that never hold the keys."""

    # --- memory --------------------------------------------------------------------------
    database_url: SecretStr | None = None
    """PostgreSQL DSN for checkpoints; unset means a SQLite file at `sqlite_path`."""
    database_pool_size: int = Field(default=10, ge=1)
    sqlite_path: Path = Path("data/checkpoints.sqlite")

    # --- models and providers ------------------------------------------------------------
    agent_models: dict[str, list[str]] = Field(default_factory=lambda: {"offline": ["offline"]})
    """Model alias -> ordered provider chain of `kind:model` targets (JSON)."""
    default_model: str | None = None
    """Alias used when a request names none; the first alias when unset."""

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str | None = None
    together_api_key: SecretStr | None = None
    together_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    ollama_base_url: str | None = None
    openai_compatible_base_url: str | None = None
    openai_compatible_api_key: SecretStr | None = None

    provider_timeout: float = Field(default=60.0, gt=0)
    """Seconds per provider request (connect, and each read while streaming)."""
    provider_timeouts: dict[str, float] = Field(default_factory=dict)
    """Per-kind overrides of `provider_timeout`, e.g. {"ollama": 300}."""
    provider_max_retries: int = Field(default=1, ge=0, le=10)
    """Extra tries on the same provider after a retryable error."""
    provider_backoff_base: float = Field(default=0.5, ge=0)
    provider_max_retry_wait: float = Field(default=10.0, ge=0)
    """A Retry-After longer than this falls through to the next provider at once."""
    provider_cooldown_failures: int = Field(default=3, ge=1)
    """Consecutive failures that put a provider into cooldown."""
    provider_cooldown_seconds: float = Field(default=30.0, ge=0)

    # --- tools and graph -----------------------------------------------------------------
    max_tool_rounds: int = Field(default=5, ge=0, le=50)
    tool_timeout: float = Field(default=30.0, gt=0)
    tool_output_max_chars: int = Field(default=16_000, ge=100)
    max_tools_offered: int = Field(default=16, ge=1)
    searxng_url: str | None = None
    searxng_timeout: float = Field(default=10.0, gt=0)
    searxng_top_k: int = Field(default=5, ge=1, le=50)
    load_plugin_tools: bool = True

    @field_validator("agent_models")
    @classmethod
    def _non_empty_chains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("AGENT_MODELS needs at least one alias")
        empty = [alias for alias, chain in value.items() if not chain]
        if empty:
            raise ValueError(f"AGENT_MODELS aliases without providers: {', '.join(empty)}")
        return value

    @field_validator("api_key_hashes")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        bad = [h for h in value if len(h) != 64 or any(c not in "0123456789abcdef" for c in h)]
        if bad:
            raise ValueError("API_KEY_HASHES must be lowercase SHA-256 hex digests")
        return value

    @property
    def default_alias(self) -> str:
        """The alias used when a request names no model."""
        return self.default_model or next(iter(self.agent_models))
