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


def _said(body: object) -> str | None:
    """The provider's own message in its error body (OpenAI's and Anthropic's shapes)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:1000]
        if isinstance(inner, str):
            return inner[:1000]
    return None


def _from_status(
    status: int,
    message: str,
    code: object,
    headers: Mapping[str, str] | None,
    said: str | None = None,
) -> ProviderFailure:
    def failure(kind: ErrorKind, retry_after: float | None = None) -> ProviderFailure:
        return ProviderFailure(kind, message, retry_after, status=status, message=said)

    if status == 429:
        return failure(ErrorKind.RATE_LIMIT, _retry_after(headers))
    if status >= 500:
        return failure(ErrorKind.SERVER_ERROR, _retry_after(headers))
    if status in (401, 403):
        return failure(ErrorKind.AUTH)
    if status == 408:
        return failure(ErrorKind.TIMEOUT)
    if status == 409:
        return failure(ErrorKind.CONFLICT)
    if _is_context_error(message, code):
        return failure(ErrorKind.CONTEXT_LENGTH)
    return failure(ErrorKind.BAD_REQUEST)


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
        return _from_status(
            exc.status_code, detail, exc.code, exc.response.headers, _said(exc.body)
        )
    if isinstance(exc, anthropic.APIStatusError):
        return _from_status(exc.status_code, detail, None, exc.response.headers, _said(exc.body))
    if isinstance(exc, openai.APIResponseValidationError | anthropic.APIResponseValidationError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
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
        return _from_status(exc.status_code, detail, None, None, exc.error)
    if isinstance(exc, json.JSONDecodeError):
        return ProviderFailure(ErrorKind.MALFORMED, f"malformed JSON from provider: {detail}")
    if isinstance(
        exc, openai.OpenAIError | anthropic.AnthropicError | httpx.HTTPError | httpx2.HTTPError
    ):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    return None


#: Failures that say something about the provider's health (they count toward a cooldown).
HEALTH_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.MALFORMED,
        ErrorKind.AUTH,
    }
)
