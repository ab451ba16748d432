"""Provider kinds: what each one declares, and the registry that finds them.

A provider kind is one module in `nodes/providers/kinds/` that defines `KIND`, a
`ProviderSpec`: its name in `kind:model` targets, the environment variables of its API key
and base URL, and how it builds LangChain chat models. Nothing else names a kind:
`server/settings/` turns every declared variable into a typed setting, `server/wiring/services.py`
reads them back by the declared names, and the catalogue builds models through `open`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType, ModuleType
from typing import Any, Literal, Protocol

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from nodes.providers import kinds


@dataclass(frozen=True)
class Price:
    """What an endpoint charges, in US dollars per million tokens."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for one call's tokens."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True)
class ProviderConfig:
    """One named provider endpoint: a kind, where it is and how to talk to it.

    The environment-only form has one endpoint per kind, named after the kind (`openai`); a
    provider file (`AGENT_CONFIG`) declares any number, under names of its own (`vllm-a`).
    """

    kind: str
    api_key: SecretStr | None = None
    base_url: str | None = None
    """The configured URL; the catalogue hands `open` the kind's default when it is unset."""
    timeout: float = 60.0
    """Seconds for one request (connect, and each read while streaming)."""
    max_retries: int = 1
    """Extra tries on the same provider after a retryable error, before falling through."""
    name: str = ""
    """The endpoint's name in `name:model` targets; the kind's name when left empty."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra HTTP headers sent with every request to the endpoint."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Default request parameters (`temperature`, `top_p`, ...); the client's values win."""
    context_window: int | None = None
    """Tokens the endpoint's models take in one request; None: known defaults by model name."""
    price: Price | None = None
    """What the endpoint charges; None: unknown (usage is counted, its cost is not)."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.kind)


class ChatModels(Protocol):
    """The chat models of one provider kind in one catalogue, and what they share."""

    def chat_model(self, model: str) -> BaseChatModel:
        """A new chat model for `model` (the catalogue builds each target once)."""
        ...

    async def aclose(self) -> None:
        """Release what the models share (pooled HTTP clients)."""
        ...


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable a provider kind reads (the setting is its lower-case name)."""

    env: str
    """The variable, exactly as operators write it: `OPENAI_API_KEY`."""
    required: bool = False
    """Refused at start when unset (an API key: unless the kind's base URL is set, a proxy)."""

    def __post_init__(self) -> None:
        if not self.env.isidentifier() or self.env != self.env.upper():
            raise ValueError(f"environment variable {self.env!r} must be an UPPER_CASE name")

    @property
    def field(self) -> str:
        """The name of the setting in `server.settings.Settings`."""
        return self.env.lower()


SettingRole = Literal["api_key", "base_url"]

ToolChoiceForm = Literal["openai", "anthropic"]
"""The dialect of `tool_choice` a provider kind speaks."""


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the service knows about one provider kind."""

    kind: str
    """Its name in `kind:model` targets, PROVIDER_TIMEOUTS, attempts, metrics and logs."""
    open: Callable[[ProviderConfig], ChatModels]
    """Builds the kind's chat models for one catalogue (called once, on first use)."""
    api_key: EnvSetting | None = None
    """Where its API key is read (a `SecretStr` setting); None: the kind takes no key."""
    base_url: EnvSetting | None = None
    """Where its base URL is read (a `str` setting); None: the kind has no URL."""
    default_base_url: str | None = None
    """Used when the base URL is unset (None: the client library's own default). It is not the
    setting's default: an unset URL is what makes a required key required."""
    single_model: str | None = None
    """For a kind with one model (offline): targets need no `:model` and are named `kind`."""
    speaks_openai: bool = False
    """Takes OpenAI's request fields: `parallel_tool_calls`, `response_format`, and the rest."""
    tool_choice: ToolChoiceForm | None = None
    """How the kind takes a forced tool: OpenAI's `tool_choice` values (`required`, a named
    function), Anthropic's (`any`, a tool name), or None: it cannot be forced (Ollama), and
    is offered only the forced tool instead (`nodes/tool_offer.py`)."""
    openai_response_format: bool = False
    """Understands OpenAI's `response_format` without speaking OpenAI's API (the offline
    model); kinds that speak it get it anyway."""

    def __post_init__(self) -> None:
        if not self.kind or ":" in self.kind or self.kind != self.kind.strip():
            raise ValueError(f"provider kind {self.kind!r} must be a non-empty name without ':'")

    def settings(self) -> Iterator[tuple[SettingRole, EnvSetting]]:
        """The environment variables the kind reads, with what each one is."""
        if self.api_key is not None:
            yield "api_key", self.api_key
        if self.base_url is not None:
            yield "base_url", self.base_url

    def missing_setting(self, config: ProviderConfig) -> str | None:
        """The variable the kind cannot work without, if `config` lacks it (checked at start)."""
        if self.base_url is not None and self.base_url.required and not config.base_url:
            return self.base_url.env
        # A hosted provider needs its key, unless a custom base URL points elsewhere (a proxy).
        key = self.api_key
        if key is not None and key.required and config.api_key is None and config.base_url is None:
            return key.env
        return None


def discover(package: ModuleType) -> dict[str, ProviderSpec]:
    """Import every public module of `package` and collect the `KIND` each one declares."""
    found: dict[str, ProviderSpec] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        spec = getattr(module, "KIND", None)
        if not isinstance(spec, ProviderSpec):
            raise TypeError(f"{module.__name__} must define KIND = ProviderSpec(...)")
        if spec.kind in found:
            raise ValueError(f"provider kind {spec.kind!r} is declared twice ({module.__name__})")
        found[spec.kind] = spec
    return found


@cache
def provider_kinds() -> Mapping[str, ProviderSpec]:
    """Every registered kind by name: the modules of `nodes/providers/kinds/`."""
    return MappingProxyType(discover(kinds))


def provider_spec(kind: str) -> ProviderSpec:
    """The declaration of a kind; ValueError naming the known ones for any other name."""
    spec = provider_kinds().get(kind)
    if spec is None:
        known = ", ".join(provider_kinds())
        raise ValueError(f"unknown provider kind {kind!r}; known: {known}")
    return spec
