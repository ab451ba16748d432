"""`ServiceSettings`: every setting of the service but the provider kinds' own variables.

Its fields, by group (serving, access, memory, models and providers, tools and graph, the
production layer), their checks, and how a provider kind's key or URL is read back from the
generated fields (`server/settings/__init__.py` adds those).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from dotenv import dotenv_values
from langgraph.types import Durability
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.context import DEFAULT_MAX_INPUT_CHARS
from nodes.providers.registry import ProviderConfig, ProviderSpec
from server.settings.provider_file import LoadedProviders, load_provider_file
from server.settings.values import (
    MCP_SERVER_NAME,
    KeyBudget,
    McpHttpServer,
    McpServerSpec,
    McpStdioServer,
)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


class ServiceSettings(BaseSettings):
    """Every setting but the provider kinds' keys and URLs (see `Settings`)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- serving -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    log_format: Literal["auto", "json", "text"] = "auto"
    """`json`: one JSON object per line; `text`: readable lines; `auto`: text on a terminal."""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """A request line and headers over this many bytes get 431 (`server/edge/slow_clients.py`)."""
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a request's line and headers may take to arrive, from the first byte (or the
    connection's opening); later: 408 and the connection closed."""
    body_timeout: float = Field(default=60.0, gt=0)
    """Seconds a request's whole body may take to arrive after its headers; later: 408 (if
    no response has begun) and the connection closed."""

    # --- access --------------------------------------------------------------------------
    api_keys: list[SecretStr] = Field(default_factory=list)
    """Bearer keys clients may use (JSON list); only their SHA-256 is kept in memory."""
    api_key_hashes: list[str] = Field(default_factory=list)
    """SHA-256 hex digests of accepted keys, for deployments that never hold the keys."""
    admin_api_keys: list[SecretStr] = Field(default_factory=list)
    """Operator keys (JSON list): the only keys `/admin` and `/metrics` take when set; also
    accepted on `/v1` and `/agent`. Unset: `/admin` takes the client keys, `/metrics` is open."""
    admin_api_key_hashes: list[str] = Field(default_factory=list)
    """SHA-256 hex digests of operator keys, like API_KEY_HASHES."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (JSON list; ["*"] for any). Empty: no CORS."""
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Larger request bodies get 413."""
    max_messages: int = Field(default=2000, ge=1)
    """More messages in one request get 400 (on `/agent/batch`: all its inputs' together)."""
    max_batch_inputs: int = Field(default=16, ge=1)
    """More inputs in one `/agent/batch` request get 400 (each input is a run)."""
    max_completion_choices: int = Field(default=16, ge=1, le=1024)
    """Most answers one `/v1/completions` request may ask for (prompts times `n`; each is a run
    of the graph, counted once by the rate limit): more get 400."""
    progress_events: bool = False
    """Stream the graph's progress (route, tool calls, fallbacks) as `reasoning_content`."""
    show_reasoning: bool = True
    """Send the reasoning providers return (DeepSeek/vLLM `reasoning_content`, OpenRouter
    `reasoning`, Anthropic thinking) to clients as `reasoning_content`. False: never sent to
    clients; the thread keeps it either way, and providers that need it get it back."""

    # --- memory --------------------------------------------------------------------------
    database_url: SecretStr | None = None
    """PostgreSQL DSN for checkpoints; unset means a SQLite file at `sqlite_path`."""
    database_pool_size: int = Field(default=10, ge=1)
    """Most connections the pool opens (it keeps up to 4 open even when idle)."""
    database_application_name: str = Field(default="agent-service", min_length=1, max_length=63)
    """How the service's sessions appear in `pg_stat_activity` and the server's logs (an
    `application_name` in DATABASE_URL wins)."""
    database_pool_max_idle: float = Field(default=300.0, gt=0)
    """Seconds an idle connection beyond the pool's minimum is kept; keep it below the idle
    timeout of any proxy or firewall in between, so they never drop one under the pool."""
    database_connect_timeout: int = Field(default=5, ge=2)
    """Seconds one connection attempt may take (libpq `connect_timeout`, unless the URL sets
    it): an unreachable server fails the attempt fast, and the pool tries again."""
    database_reconnect_timeout: float = Field(default=5.0, gt=0)
    """Seconds the pool keeps trying to replace a lost connection before it logs an error and
    gives that one up (it opens new ones again as requests come). Short on purpose: the
    pool's pause between attempts doubles each time, so after a long outage (a failover) a
    long timeout left the first turn waiting up to half the outage again (24 s after one
    minute); a new series of attempts starts at once."""
    database_pool_timeout: float = Field(default=5.0, gt=0)
    """Seconds a request waits for a PostgreSQL connection; then it gets a 503
    `checkpointer_unavailable` with `Retry-After` instead of waiting on."""
    sqlite_path: Path = Path("data/checkpoints.sqlite")
    checkpoint_durability: Durability = "exit"
    """When a turn's checkpoint is written (LangGraph's durability modes): `exit`, once, when
    the run ends, pauses for client tools or is cut short by a client that left: one
    checkpoint per turn. `async` and `sync` also write one after every step of the turn (5
    or more), so a process killed in the middle of a turn keeps the steps it had finished;
    `sync` waits for each write before the next step."""

    # --- models and providers ------------------------------------------------------------
    agent_models: dict[str, list[str]] = Field(default_factory=lambda: {"offline": ["offline"]})
    """Model alias -> ordered provider chain of `kind:model` targets (JSON)."""
    default_model: str | None = None
    """Alias used when a request names none; the provider file's `default_model`, else the
    first alias, when unset."""
    agent_config: Path | None = None
    """The provider file (TOML): named endpoints and model aliases, for more than one
    endpoint of a kind (see `server/settings/provider_file.py`). Its `[models]` replace
    AGENT_MODELS; the endpoints of the environment-only form (named after their kinds) stay
    usable."""
    summary_model: str | None = None
    """Alias whose chain summarises old turns when a prompt outgrows its model's context
    window (a cheap model does); the provider file's `summary_model`, else each turn's own
    chain, when unset."""

    provider_specs: ClassVar[tuple[ProviderSpec, ...]] = ()
    """The kinds whose keys and URLs this settings class reads (see `settings_model`)."""

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
    max_input_chars: int = Field(default=DEFAULT_MAX_INPUT_CHARS, ge=1)
    """A turn whose new user text is longer is refused (the guard node) before any model call.

    The default, 200000 characters (~50k tokens), fits the 128k-token models of the hosted
    providers with room to spare, and bounds the text every node scans; set it to what your
    models take, e.g. 100000 for a 32k-token model.
    """
    searxng_url: str | None = None
    searxng_timeout: float = Field(default=10.0, gt=0)
    searxng_top_k: int = Field(default=5, ge=1, le=50)
    load_plugin_tools: bool = True
    knowledge_enabled: bool = True
    """Offer the knowledge base (`knowledge_search`, `/admin/knowledge`, `make ingest`)."""
    knowledge_path: Path = Path("data/knowledge.sqlite")
    """The embedded store's SQLite file (sqlite-vec), used when DATABASE_URL is unset."""
    knowledge_embeddings: str = "offline"
    """Which embedding the knowledge base uses: `offline` (a lexical hashed n-gram embedding,
    no network), or `<endpoint>:<model>` naming an endpoint of the provider file (or a kind:
    `openai:text-embedding-3-small`, `ollama:nomic-embed-text`, `openai_compatible:<model>`)."""
    knowledge_top_k: int = Field(default=4, ge=1, le=10)
    """Passages `knowledge_search` returns unless the model asks for another number."""
    knowledge_chunk_size: int = Field(default=1000, ge=100, le=20_000)
    """Characters per chunk when documents are split (LangChain's recursive splitter)."""
    knowledge_chunk_overlap: int = Field(default=150, ge=0, le=5_000)
    knowledge_embed_batch: int = Field(default=64, ge=1, le=2048)
    """Chunks per embedding request to a provider."""
    mcp_servers: dict[str, McpServerSpec] = Field(default_factory=dict)
    """MCP servers whose tools the agent offers (JSON): name -> {"command", "args", "env",
    "cwd"} (stdio) or {"url", "headers", "headers_env"} (Streamable HTTP). Their tools are
    named `<name>_<tool>`."""
    mcp_connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to connect to an MCP server and list its tools (the start waits this long at
    most), and for one ping."""
    mcp_ping_seconds: float = Field(default=15.0, gt=0)
    """Seconds between pings of a connected MCP server (a failed ping reconnects it)."""
    mcp_retry_max_seconds: float = Field(default=30.0, gt=0)
    """The longest pause between attempts at an MCP server that is down (it doubles from
    0.5 s)."""

    # --- production layer: Redis, cache, rate limits, shutdown ---------------------------
    redis_url: SecretStr | None = None
    """Redis shared by the replicas (cache, cooldowns, rate limits); unset = in-process only."""
    redis_prefix: str = Field(default="agent", min_length=1)
    """Prefix of every Redis key, so several deployments (or tests) can share one Redis."""
    redis_timeout: float = Field(default=0.25, gt=0)
    """Seconds for a Redis connect or command: a dead Redis must not stall requests."""
    redis_retry_seconds: float = Field(default=2.0, ge=0)
    """After a Redis error, go without Redis this long before trying it again."""
    cache_enabled: bool = True
    cache_ttl_seconds: float = Field(default=3600.0, gt=0)
    cache_max_entries: int = Field(default=1024, ge=0)
    """Entries of the in-process LRU layer (0 disables that layer)."""
    cache_compress_min_bytes: int = Field(default=1024, ge=0)
    """Values at least this long are zlib-compressed."""
    cache_version: str = "1"
    """Part of every cache key: change it to invalidate all cached answers at once."""
    cache_any_temperature: bool = False
    """Cache requests whatever their temperature, not only `temperature: 0` ones."""
    cache_shared_across_keys: bool = False
    """Let callers with different API keys share cached answers (off: one cache per key)."""
    rate_limit_rpm: int = Field(default=0, ge=0)
    """Requests per minute per API key (per client address when open); 0 = unlimited."""
    monthly_token_budget: int | None = Field(default=None, ge=0)
    """Tokens (input + output) each client key may use per calendar month (UTC); unset: no
    limit. A key over its budget gets 429 `insufficient_quota` until the month ends."""
    monthly_cost_budget: float | None = Field(default=None, ge=0)
    """US dollars each client key may spend per calendar month (UTC), at the endpoints'
    prices (an endpoint without a price costs nothing); unset: no limit."""
    key_budgets: dict[str, KeyBudget] = Field(default_factory=dict)
    """Per-key monthly budgets (JSON): key id (the 16 hex characters of `/admin/usage`), the
    key's SHA-256 digest, or `anonymous` -> {"tokens": N, "usd": X}. A listed key has exactly
    its entry's limits ({} = unlimited) instead of the defaults above; admin keys have only
    the limits listed here."""
    usage_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a replica trusts the month's totals it read before reading them again (the
    other replicas' usage shows up this late in its budget checks)."""
    shutdown_grace_seconds: int = Field(default=30, ge=0)
    """On SIGTERM, how long in-flight requests and streams may take to finish."""
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    """On SIGTERM, keep serving this long with /ready at 503 before draining (for LBs)."""

    @field_validator("agent_models")
    @classmethod
    def _non_empty_chains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("AGENT_MODELS needs at least one alias")
        empty = [alias for alias, chain in value.items() if not chain]
        if empty:
            raise ValueError(f"AGENT_MODELS aliases without providers: {', '.join(empty)}")
        return value

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_server_names(
        cls, value: dict[str, McpStdioServer | McpHttpServer]
    ) -> dict[str, McpStdioServer | McpHttpServer]:
        bad = [name for name in value if not MCP_SERVER_NAME.match(name)]
        if bad:
            raise ValueError(
                f"MCP_SERVERS names {', '.join(map(repr, bad))}: a server name prefixes its "
                "tools' names, so it must be 1 to 62 characters of A-Z, a-z, 0-9, _ and -"
            )
        return value

    @field_validator("api_key_hashes", "admin_api_key_hashes")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        bad = [h for h in value if len(h) != 64 or not _is_hex(h)]
        if bad:
            raise ValueError("key hashes must be lowercase SHA-256 hex digests")
        return value

    @field_validator("key_budgets")
    @classmethod
    def _budget_keys(cls, value: dict[str, KeyBudget]) -> dict[str, KeyBudget]:
        budgets: dict[str, KeyBudget] = {}
        for name, budget in value.items():
            key_id = name if name == "anonymous" else name[:16]
            if name != "anonymous" and (len(name) not in (16, 64) or not _is_hex(name)):
                raise ValueError(
                    f"KEY_BUDGETS key {name!r} must be a key id (16 lowercase hex characters), "
                    "a SHA-256 digest (64), or 'anonymous'"
                )
            if key_id in budgets:
                raise ValueError(f"KEY_BUDGETS names key {key_id} twice")
            budgets[key_id] = budget
        return budgets

    @property
    def default_alias(self) -> str:
        """The alias used when a request names no model (of AGENT_MODELS)."""
        return self.default_model or next(iter(self.agent_models))

    def environment_secret(self, name: str) -> SecretStr | None:
        """The variable `name` (exact case) from the environment, else from `.env`.

        How the provider file's `api_key_env` names are read: the file holds the variable's
        name, never the key.
        """
        value = os.environ.get(name)
        if value is None:
            env_file = self.model_config.get("env_file")
            if isinstance(env_file, str | Path) and Path(env_file).is_file():
                value = dotenv_values(env_file).get(name)
        return SecretStr(value) if value else None

    def provider_file(self) -> LoadedProviders | None:
        """The provider file AGENT_CONFIG names, read and checked (None: no file set).

        Raises:
            ProviderFileError: The file is missing, is not TOML, or a field is wrong.
        """
        if self.agent_config is None:
            return None
        return load_provider_file(
            self.agent_config,
            secret=self.environment_secret,
            default_timeout=self.provider_timeout,
            default_retries=self.provider_max_retries,
        )

    def provider_configs(self) -> dict[str, ProviderConfig]:
        """Connection settings of every provider kind these settings read, by kind."""
        return {
            spec.kind: ProviderConfig(
                kind=spec.kind,
                api_key=self.provider_api_key(spec),
                base_url=self.provider_base_url(spec),
                timeout=self.provider_timeouts.get(spec.kind, self.provider_timeout),
                max_retries=self.provider_max_retries,
            )
            for spec in self.provider_specs
        }

    def provider_api_key(self, spec: ProviderSpec) -> SecretStr | None:
        """The API key of a provider kind (None: unset, or the kind takes none)."""
        if spec.api_key is None:
            return None
        value = self._provider_value(spec, spec.api_key.field)
        if value is None or isinstance(value, SecretStr):
            return value
        raise TypeError(f"{spec.api_key.env} is not read as a secret")

    def provider_base_url(self, spec: ProviderSpec) -> str | None:
        """The configured base URL of a provider kind (None: unset, or the kind has none)."""
        if spec.base_url is None:
            return None
        value = self._provider_value(spec, spec.base_url.field)
        if value is None or isinstance(value, str):
            return value
        raise TypeError(f"{spec.base_url.env} is not read as a string")

    def _provider_value(self, spec: ProviderSpec, name: str) -> object:
        if spec not in self.provider_specs:
            raise ValueError(f"these settings do not read provider kind {spec.kind!r}")
        value: object = getattr(self, name)
        return value
