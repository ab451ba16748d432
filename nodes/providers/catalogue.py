"""Model aliases to provider chains, and one LangChain chat model per provider target."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Protocol

import anthropic
import openai
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from pydantic import Field, SecretStr

from graph.errors import ModelNotFoundError
from nodes.providers.offline import OfflineChatModel
from nodes.providers.wire_note import note_response

logger = logging.getLogger(__name__)


class _AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


class PooledChatAnthropic(ChatAnthropic):
    """ChatAnthropic on an HTTP client we own (the stock one shares a process-wide client)."""

    http_async_client: anthropic.DefaultAsyncHttpxClient | None = Field(default=None, exclude=True)

    @cached_property
    def _async_client(self) -> anthropic.AsyncClient:
        return anthropic.AsyncClient(**self._client_params, http_client=self.http_async_client)


class ClosableChatOllama(ChatOllama):
    """ChatOllama whose HTTP clients can be closed (the stock one leaves them open)."""

    async def aclose(self) -> None:
        """Close the sync and async Ollama clients."""
        await self._async_client.close()  # type: ignore[no-untyped-call]  # ollama: untyped
        self._client.close()  # type: ignore[no-untyped-call]


class ProviderKind(StrEnum):
    """Every kind of provider the service can call."""

    OPENAI = "openai"
    OPENROUTER = "openrouter"
    TOGETHER = "together"
    OPENAI_COMPATIBLE = "openai-compatible"
    ANTHROPIC = "anthropic"
    OLLAMA = "ollama"
    OFFLINE = "offline"


#: Kinds spoken through the OpenAI wire protocol (langchain-openai's ChatOpenAI).
OPENAI_WIRE = frozenset(
    {
        ProviderKind.OPENAI,
        ProviderKind.OPENROUTER,
        ProviderKind.TOGETHER,
        ProviderKind.OPENAI_COMPATIBLE,
    }
)

#: Hosted providers that refuse requests without a key.
KEY_REQUIRED = frozenset(
    {ProviderKind.OPENAI, ProviderKind.OPENROUTER, ProviderKind.TOGETHER, ProviderKind.ANTHROPIC}
)

DEFAULT_BASE_URLS: Mapping[ProviderKind, str | None] = {
    ProviderKind.OPENAI: None,  # the SDK's own default
    ProviderKind.OPENROUTER: "https://openrouter.ai/api/v1",
    ProviderKind.TOGETHER: "https://api.together.xyz/v1",
    ProviderKind.OPENAI_COMPATIBLE: None,  # must be configured
    ProviderKind.ANTHROPIC: None,
    ProviderKind.OLLAMA: "http://127.0.0.1:11434",
    ProviderKind.OFFLINE: None,
}


@dataclass(frozen=True)
class ProviderConfig:
    """Connection settings of one provider kind."""

    kind: ProviderKind
    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float = 60.0
    """Seconds for one request (connect, and each read while streaming)."""
    max_retries: int = 1
    """Extra tries on the same provider after a retryable error, before falling through."""


@dataclass(frozen=True)
class ProviderTarget:
    """One entry of a provider chain: a provider kind and the model name it knows."""

    kind: ProviderKind
    model: str

    @property
    def id(self) -> str:
        """`kind:model`, the name used in settings, attempts, metrics and logs."""
        return self.kind.value if self.kind is ProviderKind.OFFLINE else f"{self.kind}:{self.model}"

    @classmethod
    def parse(cls, spec: str) -> ProviderTarget:
        """Parse `kind:model` (split on the first colon: model names may contain colons)."""
        kind_text, _, model = spec.strip().partition(":")
        try:
            kind = ProviderKind(kind_text)
        except ValueError:
            known = ", ".join(k.value for k in ProviderKind)
            raise ValueError(
                f"unknown provider kind {kind_text!r} in {spec!r}; known: {known}"
            ) from None
        if kind is ProviderKind.OFFLINE:
            return cls(kind=kind, model=model or "offline")
        if not model:
            raise ValueError(f"provider target {spec!r} needs a model: write '{kind}:<model>'")
        return cls(kind=kind, model=model)


@dataclass
class ProviderCatalogue:
    """Resolves aliases to provider chains and owns one chat model per target.

    Chat models of one provider kind share one pooled HTTP client; `aclose` releases them.
    """

    aliases: Mapping[str, list[ProviderTarget]]
    default_alias: str
    configs: Mapping[ProviderKind, ProviderConfig] = field(default_factory=dict)
    _models: dict[str, BaseChatModel] = field(default_factory=dict, init=False)
    _clients: dict[ProviderKind, _AsyncClosable] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.default_alias not in self.aliases:
            raise ValueError(
                f"default model alias {self.default_alias!r} is not among the configured "
                f"aliases: {', '.join(self.aliases)}"
            )
        for alias, chain in self.aliases.items():
            for target in chain:
                missing = self._missing_setting(target.kind)
                if missing:
                    raise ValueError(f"alias {alias!r} uses {target.id!r}, which needs {missing}")

    def _missing_setting(self, kind: ProviderKind) -> str | None:
        """The setting a kind cannot work without, if it is unset (checked at start)."""
        config = self.config(kind)
        if kind is ProviderKind.OPENAI_COMPATIBLE and not config.base_url:
            return "OPENAI_COMPATIBLE_BASE_URL"
        # A hosted provider needs its key, unless a custom base URL points elsewhere (a proxy).
        if kind in KEY_REQUIRED and config.api_key is None and config.base_url is None:
            return f"{kind.value.upper()}_API_KEY"
        return None

    def alias_names(self) -> list[str]:
        """Aliases in configuration order; what `GET /v1/models` lists."""
        return list(self.aliases)

    def resolve(self, alias: str | None) -> list[ProviderTarget]:
        """The provider chain of an alias (the default alias for None)."""
        name = alias or self.default_alias
        chain = self.aliases.get(name)
        if chain is None:
            raise ModelNotFoundError(name, self.alias_names())
        return chain

    def config(self, kind: ProviderKind) -> ProviderConfig:
        """The settings of a provider kind (defaults when it was not configured)."""
        return self.configs.get(kind) or ProviderConfig(kind=kind)

    def chat_model(self, target: ProviderTarget) -> BaseChatModel:
        """The chat model of a target, built once and then reused."""
        model = self._models.get(target.id)
        if model is None:
            model = self._build(target)
            self._models[target.id] = model
        return model

    def _openai_client(self, kind: ProviderKind, timeout: float) -> openai.DefaultAsyncHttpxClient:
        client = self._clients.get(kind)
        if not isinstance(client, openai.DefaultAsyncHttpxClient):
            client = openai.DefaultAsyncHttpxClient(
                timeout=timeout, event_hooks={"response": [note_response]}
            )
            self._clients[kind] = client
        return client

    def _anthropic_client(self, timeout: float) -> anthropic.DefaultAsyncHttpxClient:
        client = self._clients.get(ProviderKind.ANTHROPIC)
        if not isinstance(client, anthropic.DefaultAsyncHttpxClient):
            client = anthropic.DefaultAsyncHttpxClient(
                timeout=timeout, event_hooks={"response": [note_response]}
            )
            self._clients[ProviderKind.ANTHROPIC] = client
        return client

    def _build(self, target: ProviderTarget) -> BaseChatModel:
        config = self.config(target.kind)
        base_url = config.base_url or DEFAULT_BASE_URLS[target.kind]
        key = config.api_key
        if target.kind is ProviderKind.OFFLINE:
            return OfflineChatModel()
        if target.kind in OPENAI_WIRE:
            return ChatOpenAI(
                model=target.model,
                api_key=key or SecretStr("not-needed"),
                base_url=base_url,
                timeout=config.timeout,
                max_retries=0,
                stream_usage=True,
                http_async_client=self._openai_client(target.kind, config.timeout),
            )
        if target.kind is ProviderKind.ANTHROPIC:
            return PooledChatAnthropic(  # type: ignore[call-arg]
                model_name=target.model,
                api_key=key or SecretStr("not-needed"),
                base_url=base_url,
                default_request_timeout=config.timeout,
                max_retries=0,
                max_tokens=4096,
                stream_usage=True,
                http_async_client=self._anthropic_client(config.timeout),
            )
        return ClosableChatOllama(
            model=target.model,
            base_url=base_url,
            client_kwargs={"timeout": config.timeout},
        )

    async def aclose(self) -> None:
        """Close the pooled HTTP clients."""
        for model in self._models.values():
            if isinstance(model, ClosableChatOllama):
                await model.aclose()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._models.clear()
