"""The only place that maps provider SDK exceptions to the agent's ErrorKind."""

from __future__ import annotations

import json
from collections.abc import Mapping

import anthropic
import httpx
import httpx2
import ollama
import openai

from graph.errors import ErrorKind, ProviderFailure

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "context window",
    "too many tokens",
)

#: Exceptions of every provider SDK that this module knows how to classify.
PROVIDER_EXCEPTIONS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    anthropic.AnthropicError,
    ollama.ResponseError,
    httpx.HTTPError,
    httpx2.HTTPError,  # the openai and anthropic SDKs' transport; raised raw mid-stream
    json.JSONDecodeError,
    TimeoutError,
)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _is_context_error(message: str, code: object) -> bool:
    text = f"{code} {message}".lower()
    return any(marker in text for marker in _CONTEXT_MARKERS)


def _from_status(
    status: int, message: str, code: object, headers: Mapping[str, str] | None
) -> ProviderFailure:
    if status == 429:
        return ProviderFailure(ErrorKind.RATE_LIMIT, message, _retry_after(headers))
    if status >= 500:
        return ProviderFailure(ErrorKind.SERVER_ERROR, message, _retry_after(headers))
    if status in (401, 403):
        return ProviderFailure(ErrorKind.AUTH, message)
    if status == 408:
        return ProviderFailure(ErrorKind.TIMEOUT, message)
    if _is_context_error(message, code):
        return ProviderFailure(ErrorKind.CONTEXT_LENGTH, message)
    return ProviderFailure(ErrorKind.BAD_REQUEST, message)


def classify(exc: BaseException) -> ProviderFailure | None:
    """Classify a provider exception; None means it is not a provider failure at all."""
    detail = str(exc)[:500] or type(exc).__name__
    if isinstance(
        exc,
        openai.APITimeoutError
        | anthropic.APITimeoutError
        | httpx.TimeoutException
        | httpx2.TimeoutException,
    ):
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, TimeoutError):
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc.status_code, detail, exc.code, exc.response.headers)
    if isinstance(exc, anthropic.APIStatusError):
        return _from_status(exc.status_code, detail, None, exc.response.headers)
    if isinstance(exc, openai.APIResponseValidationError | anthropic.APIResponseValidationError):
        return ProviderFailure(ErrorKind.BAD_RESPONSE, detail)
    if isinstance(
        exc,
        openai.APIConnectionError
        | anthropic.APIConnectionError
        | httpx.TransportError
        | httpx2.TransportError,
    ):
        return ProviderFailure(ErrorKind.CONNECTION, detail)
    if isinstance(exc, httpx.HTTPStatusError):
        return _from_status(exc.response.status_code, detail, None, exc.response.headers)
    if isinstance(exc, ollama.ResponseError):
        return _from_status(exc.status_code, detail, None, None)
    if isinstance(exc, json.JSONDecodeError):
        return ProviderFailure(ErrorKind.BAD_RESPONSE, f"malformed JSON from provider: {detail}")
    if isinstance(
        exc, openai.OpenAIError | anthropic.AnthropicError | httpx.HTTPError | httpx2.HTTPError
    ):
        return ProviderFailure(ErrorKind.BAD_RESPONSE, detail)
    return None


#: Failures that say something about the provider's health (they count toward a cooldown).
HEALTH_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.BAD_RESPONSE,
        ErrorKind.AUTH,
    }
)
