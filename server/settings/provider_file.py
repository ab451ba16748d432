"""The provider file (`AGENT_CONFIG`, e.g. `agent.toml`): named endpoints and model aliases.

The environment-only form (`AGENT_MODELS`, one endpoint per kind) covers one-provider
setups; a fleet (two vLLM servers, a local llama.cpp beside a hosted gateway) is a TOML file:

    default_model = "chat"
    summary_model = "cheap"

    [endpoints.vllm-a]
    kind = "openai-compatible"
    base_url = "http://10.0.0.5:8000/v1"
    api_key_env = "VLLM_A_KEY"          # the variable's name: a key never sits in the file
    timeout = 30
    retries = 1
    headers = { "X-Team" = "search" }
    params = { temperature = 0.2 }
    context_window = 32768
    price = { input = 0.15, output = 0.60 }   # US dollars per million tokens

    [models]
    chat = ["vllm-a:qwen2.5-7b-instruct", "vllm-b:qwen2.5-7b-instruct", "claude:claude-haiku-4-5"]

Everything is checked when the service starts; an error names the file, the line and the
field (`agent.toml:7: endpoints.vllm-a.timeout: Input should be greater than 0`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from nodes.providers.catalogue import ProviderTarget
from nodes.providers.registry import Price, ProviderConfig, provider_kinds

_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_ENV_NAME = r"[A-Z_][A-Z0-9_]*"


class ProviderFileError(ValueError):
    """The provider file cannot be used; the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceEntry(_Strict):
    """US dollars per million tokens."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)


class EndpointEntry(_Strict):
    """One `[endpoints.NAME]` table."""

    kind: str
    base_url: str | None = None
    api_key_env: Annotated[str, Field(pattern=f"^{_ENV_NAME}$")] | None = None
    """The environment variable holding the key (never the key itself)."""
    timeout: float | None = Field(default=None, gt=0)
    retries: int | None = Field(default=None, ge=0, le=10)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    context_window: int | None = Field(default=None, ge=256)
    price: PriceEntry | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in provider_kinds():
            raise ValueError(f"unknown kind {value!r}; known: {', '.join(provider_kinds())}")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class ProviderFile(_Strict):
    """The whole file."""

    default_model: str | None = None
    summary_model: str | None = None
    endpoints: dict[Annotated[str, Field(pattern=f"^{_NAME}$")], EndpointEntry] = Field(
        default_factory=dict
    )
    models: dict[str, Annotated[list[str], Field(min_length=1)]] = Field(default_factory=dict)
    """Alias -> chain of `endpoint:model` (an endpoint of this file or a kind's name)."""


@dataclass(frozen=True)
class LoadedProviders:
    """What the file declares, ready for the catalogue."""

    endpoints: dict[str, ProviderConfig]
    models: dict[str, list[ProviderTarget]]
    default_model: str | None
    summary_model: str | None


SecretLookup = Callable[[str], SecretStr | None]
"""Reads an environment variable by name (`server.settings.environment_secret`)."""


def load_provider_file(
    path: Path,
    *,
    secret: SecretLookup,
    default_timeout: float,
    default_retries: int,
) -> LoadedProviders:
    """Read and check the provider file.

    Raises:
        ProviderFileError: The file is missing, is not TOML, or a field is wrong.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProviderFileError(f"{path}: cannot read the provider file: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProviderFileError(f"{path}: not valid TOML: {exc}") from exc
    lines = _KeyLines(text)
    try:
        declared = ProviderFile.model_validate(raw)
    except ValidationError as exc:
        raise ProviderFileError(_describe(path, lines, exc)) from exc

    def fail(loc: tuple[str, ...], message: str) -> ProviderFileError:
        return ProviderFileError(f"{path}:{lines.line(loc)}: {'.'.join(loc)}: {message}")

    endpoints: dict[str, ProviderConfig] = {}
    for name, entry in declared.endpoints.items():
        api_key = None
        if entry.api_key_env is not None:
            api_key = secret(entry.api_key_env)
            if api_key is None:
                raise fail(
                    ("endpoints", name, "api_key_env"),
                    f"the environment variable {entry.api_key_env} is not set",
                )
        spec = provider_kinds()[entry.kind]
        config = ProviderConfig(
            kind=entry.kind,
            name=name,
            api_key=api_key,
            base_url=entry.base_url,
            timeout=entry.timeout if entry.timeout is not None else default_timeout,
            max_retries=entry.retries if entry.retries is not None else default_retries,
            headers=dict(entry.headers),
            params=dict(entry.params),
            context_window=entry.context_window,
            price=Price(entry.price.input, entry.price.output) if entry.price else None,
        )
        missing = spec.missing_setting(config)
        if missing:
            field = "base_url" if spec.base_url and missing == spec.base_url.env else "api_key_env"
            raise fail(("endpoints", name, field), f"a {entry.kind!r} endpoint needs {field}")
        endpoints[name] = config
    models: dict[str, list[ProviderTarget]] = {}
    for alias, chain in declared.models.items():
        try:
            models[alias] = [ProviderTarget.parse(spec, endpoints) for spec in chain]
        except ValueError as exc:
            raise fail(("models", alias), str(exc)) from exc
    for field in ("default_model", "summary_model"):
        alias = getattr(declared, field)
        if alias is not None and alias not in declared.models:
            raise fail((field,), f"{alias!r} is not an alias of [models]")
    return LoadedProviders(
        endpoints=endpoints,
        models=models,
        default_model=declared.default_model,
        summary_model=declared.summary_model,
    )


def _describe(path: Path, lines: _KeyLines, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        where = ".".join(loc) or "(top level)"
        problems.append(f"{path}:{lines.line(loc)}: {where}: {error['msg']}")
    return "\n".join(problems)


class _KeyLines:
    """Where each key of a TOML text is written, for error messages (tomllib keeps no lines).

    Tables (`[endpoints.vllm-a]`), plain and dotted keys, and the keys of one-line inline
    tables are found; for anything else the line of the nearest enclosing key is given.
    """

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")
    _INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\"'-]+)\s*=")

    def __init__(self, text: str) -> None:
        self._where: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = self._parts(header.group(1))
                self._where.setdefault(table, number)
                continue
            key = self._KEY.match(line)
            if not key:
                continue
            path = table + self._parts(key.group(1))
            self._where.setdefault(path, number)
            rest = line[key.end() :]
            for inner in self._INLINE_KEY.finditer(rest):
                self._where.setdefault(path + self._parts(inner.group(1)), number)

    @staticmethod
    def _parts(dotted: str) -> tuple[str, ...]:
        return tuple(part.strip().strip("\"'") for part in dotted.split("."))

    def line(self, loc: tuple[str, ...]) -> int:
        """The line of `loc`, or of its nearest ancestor that is written down (1 if none)."""
        for end in range(len(loc), 0, -1):
            number = self._where.get(loc[:end])
            if number is not None:
                return number
        return 1
