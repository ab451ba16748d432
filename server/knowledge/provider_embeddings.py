"""Embeddings from a provider endpoint: `KNOWLEDGE_EMBEDDINGS=<endpoint>:<model>`.

`<endpoint>` is named as in a chat target: an endpoint of the provider file (AGENT_CONFIG),
or a kind of the environment-only form (`openai`, `openai-compatible` — also written
`openai_compatible` — or `ollama`, with the kind's key and base URL settings). The endpoint's
connection settings are the chat models': base URL, API key, extra headers, timeout, retries.

OpenAI-shaped kinds are embedded through langchain-openai's `OpenAIEmbeddings` (the server's
`/v1/embeddings`), Ollama through langchain-ollama's `OllamaEmbeddings` (`/api/embed`). Only
OpenAI itself is sent token arrays (langchain-openai's length-safe path, which splits a text
longer than the model takes); other servers get the texts, as most take nothing else.

The dimension is not configured: opening embeds one short probe text and records its length
with the model (`EmbeddingSpec`), which is also how an endpoint that cannot be reached is
found at start, not at the first search. An endpoint that fails, then or later, raises
`EmbeddingsUnavailableError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import TypeVar

import httpx
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr

from nodes.providers.registry import ProviderConfig, provider_kinds
from nodes.redact import redact_urls
from server.knowledge.store import EmbeddingSpec, EmbeddingsUnavailableError
from server.settings import Settings

__all__ = ["PROBE_TEXT", "EmbeddingsUnavailableError", "ProviderEmbeddings", "open_embeddings"]

logger = logging.getLogger(__name__)

PROBE_TEXT = "dimension probe"
"""Embedded once at open: the length of its vector is the dimension."""

_T = TypeVar("_T")


class ProviderEmbeddings(Embeddings):
    """A provider's embedding model, whose failures are one error type.

    The OpenAI SDK retries by itself (429, 5xx, connection errors, honouring Retry-After);
    Ollama's client does not, so for it `retries` extra tries are made here on a connection
    error or a 5xx, after `backoff * 2**attempt` seconds.
    """

    def __init__(
        self,
        inner: Embeddings,
        *,
        model: str,
        errors: tuple[type[Exception], ...],
        retries: int = 0,
        backoff: float = 0.5,
        batch: int | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        """The LangChain integration (`OpenAIEmbeddings` or `OllamaEmbeddings`)."""
        self.model = model
        self._errors = errors
        self._retries = retries
        self._backoff = backoff
        self._batch = batch
        self._close = close

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed chunks of documents, KNOWLEDGE_EMBED_BATCH texts per request."""
        if self._batch is None:  # the integration batches (OpenAIEmbeddings' chunk_size)
            return await self._call(lambda: self.inner.aembed_documents(texts))
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            part = texts[start : start + self._batch]
            vectors += await self._call(partial(self.inner.aembed_documents, part))
        return vectors

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return await self._call(lambda: self.inner.aembed_query(text))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed chunks of documents, blocking (LangChain's sync API; no retries here)."""
        try:
            return self.inner.embed_documents(texts)
        except self._errors as error:
            raise self._unavailable(error) from error

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query, blocking (no retries here)."""
        try:
            return self.inner.embed_query(text)
        except self._errors as error:
            raise self._unavailable(error) from error

    async def aclose(self) -> None:
        """Close the integration's HTTP clients."""
        if self._close is not None:
            await self._close()

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        attempt = 0
        while True:
            try:
                return await call()
            except self._errors as error:
                if attempt >= self._retries or not _transient(error):
                    raise self._unavailable(error) from error
                logger.warning(
                    "embedding %s failed (%s), retrying", self.model, type(error).__name__
                )
                await asyncio.sleep(self._backoff * 2**attempt)
                attempt += 1

    def _unavailable(self, error: Exception) -> EmbeddingsUnavailableError:
        return EmbeddingsUnavailableError(
            self.model,
            f"the embedding endpoint of {self.model!r} failed: {redact_urls(str(error))}",
        )


def _transient(error: Exception) -> bool:
    """Worth another try: no connection, a timeout, or the server's own 5xx (Ollama's)."""
    if isinstance(error, ConnectionError | httpx.TransportError):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 429)


def endpoint_config(settings: Settings) -> tuple[str, ProviderConfig]:
    """The model name and the endpoint KNOWLEDGE_EMBEDDINGS names (its base URL resolved).

    Raises:
        ValueError: No model, an unknown endpoint, a kind that serves no embeddings, or a
            setting the endpoint needs is missing (ProviderFileError: the file is wrong).
    """
    setting = settings.knowledge_embeddings.strip()
    name, _, model = setting.partition(":")
    configs = settings.provider_configs()
    if (loaded := settings.provider_file()) is not None:
        configs.update(loaded.endpoints)
    if name not in configs and name.replace("_", "-") in configs:
        name = name.replace("_", "-")  # `openai_compatible`, after its variables' names
    config = configs.get(name)
    served = [n for n, c in configs.items() if _integration(c.kind) is not None]
    if config is None:
        raise ValueError(
            f"KNOWLEDGE_EMBEDDINGS={setting!r}: unknown endpoint {name!r}; known: 'offline', "
            + ", ".join(repr(n) for n in served)
        )
    if _integration(config.kind) is None:
        raise ValueError(
            f"KNOWLEDGE_EMBEDDINGS={setting!r}: endpoint {name!r} is of kind {config.kind!r}, "
            f"which serves no embeddings; known: 'offline', " + ", ".join(repr(n) for n in served)
        )
    if not model:
        raise ValueError(f"KNOWLEDGE_EMBEDDINGS={setting!r} needs a model: '{name}:<model>'")
    spec = provider_kinds()[config.kind]
    missing = spec.missing_setting(config)
    if missing is not None:
        raise ValueError(f"KNOWLEDGE_EMBEDDINGS={setting!r}: endpoint {name!r} needs {missing}")
    return model, replace(config, base_url=config.base_url or spec.default_base_url)


def _integration(kind: str) -> str | None:
    if kind == "ollama":
        return "ollama"
    declared = provider_kinds().get(kind)
    return "openai" if declared is not None and declared.speaks_openai else None


def build_embeddings(config: ProviderConfig, model: str, *, batch: int) -> ProviderEmbeddings:
    """The LangChain integration for `model` on the endpoint (no request is made)."""
    target = f"{config.name}:{model}"
    if _integration(config.kind) == "ollama":
        return _ollama(config, model, target, batch=batch)
    return _openai(config, model, target, batch=batch)


def _openai(config: ProviderConfig, model: str, target: str, *, batch: int) -> ProviderEmbeddings:
    import openai  # the SDK costs 0.7 s of imports: only when such an embedding is configured
    from langchain_openai import OpenAIEmbeddings

    is_openai = config.kind == "openai" and (
        config.base_url is None or "api.openai.com" in config.base_url
    )
    client = openai.DefaultAsyncHttpxClient(timeout=config.timeout)
    inner = OpenAIEmbeddings(
        model=model,
        openai_api_key=config.api_key or SecretStr("not-needed"),
        openai_api_base=config.base_url,
        request_timeout=config.timeout,
        max_retries=config.max_retries,
        chunk_size=batch,
        check_embedding_ctx_length=is_openai,
        default_headers=dict(config.headers) or None,
        http_async_client=client,
    )
    return ProviderEmbeddings(inner, model=target, errors=(openai.APIError,), close=client.aclose)


def _ollama(config: ProviderConfig, model: str, target: str, *, batch: int) -> ProviderEmbeddings:
    from langchain_ollama import OllamaEmbeddings
    from ollama import ResponseError

    inner = OllamaEmbeddings(
        model=model,
        base_url=config.base_url,
        client_kwargs={"timeout": config.timeout, "headers": dict(config.headers)},
    )

    async def close() -> None:
        await inner._async_client.close()  # type: ignore[union-attr]
        inner._client.close()  # type: ignore[union-attr]

    return ProviderEmbeddings(
        inner,
        model=target,
        errors=(ResponseError, httpx.HTTPError, ConnectionError),
        retries=config.max_retries,
        batch=batch,
        close=close,
    )


async def open_embeddings(settings: Settings) -> tuple[ProviderEmbeddings, EmbeddingSpec]:
    """The embedding KNOWLEDGE_EMBEDDINGS names, probed for its dimension.

    Raises:
        ValueError: The setting names no endpoint that serves embeddings.
        EmbeddingsUnavailableError: The endpoint cannot be reached or refused the probe.
    """
    model, config = endpoint_config(settings)
    embeddings = build_embeddings(config, model, batch=settings.knowledge_embed_batch)
    try:
        probe = await embeddings.aembed_query(PROBE_TEXT)
    except EmbeddingsUnavailableError as error:
        await embeddings.aclose()
        raise EmbeddingsUnavailableError(
            embeddings.model,
            f"KNOWLEDGE_EMBEDDINGS={settings.knowledge_embeddings.strip()!r}: the endpoint "
            f"{config.name!r} ({config.base_url or 'the default URL'}) cannot embed: "
            f"{error.__cause__}",
        ) from error
    if not probe:
        await embeddings.aclose()
        raise EmbeddingsUnavailableError(
            embeddings.model, f"{embeddings.model!r} returned an empty vector for the probe"
        )
    return embeddings, EmbeddingSpec(model=embeddings.model, dimension=len(probe))
