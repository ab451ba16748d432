"""The only place that maps provider SDK exceptions to the agent's ErrorKind.

An SDK's exceptions are looked at only once the SDK is loaded: no exception of the anthropic
SDK can exist in a process that never imported it, and importing every SDK here would cost
each start the 2.5 s of SDKs it may never use (`nodes/providers/openers.py` loads an SDK with
the first model of its kind). `_SDKS` names each SDK by its module; its classifier imports
the module only when that module is already in `sys.modules`, which costs nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from graph.errors import ErrorKind, ProviderFailure
from nodes.redact import redact_urls

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "context window",
    "too many tokens",
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


def _openai_errors() -> tuple[type[BaseException], ...]:
    import openai

    return (openai.OpenAIError,)


def _openai_failure(exc: BaseException, detail: str) -> ProviderFailure | None:
    import openai

    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its base
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, openai.APIStatusError):
        return _from_status(
            exc.status_code, detail, exc.code, exc.response.headers, _said(exc.body)
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderFailure(ErrorKind.CONNECTION, detail)
    if isinstance(exc, openai.OpenAIError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    return None


def _anthropic_errors() -> tuple[type[BaseException], ...]:
    import anthropic

    return (anthropic.AnthropicError,)


def _anthropic_failure(exc: BaseException, detail: str) -> ProviderFailure | None:
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):  # before APIConnectionError, its base
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, anthropic.APIStatusError):
        return _from_status(exc.status_code, detail, None, exc.response.headers, _said(exc.body))
    if isinstance(exc, anthropic.APIResponseValidationError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderFailure(ErrorKind.CONNECTION, detail)
    if isinstance(exc, anthropic.AnthropicError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    return None


def _ollama_errors() -> tuple[type[BaseException], ...]:
    import ollama

    return (ollama.ResponseError,)


def _ollama_failure(exc: BaseException, detail: str) -> ProviderFailure | None:
    import ollama

    if isinstance(exc, ollama.ResponseError):
        return _from_status(exc.status_code, detail, None, None, exc.error)
    return None


def _httpx_errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.HTTPError,)


def _httpx_failure(exc: BaseException, detail: str) -> ProviderFailure | None:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, httpx.TransportError):
        return ProviderFailure(ErrorKind.CONNECTION, detail)
    if isinstance(exc, httpx.HTTPStatusError):
        return _from_status(exc.response.status_code, detail, None, exc.response.headers)
    if isinstance(exc, httpx.HTTPError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    return None


def _httpx2_errors() -> tuple[type[BaseException], ...]:
    import httpx2

    return (httpx2.HTTPError,)


def _httpx2_failure(exc: BaseException, detail: str) -> ProviderFailure | None:
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, httpx2.TransportError):
        return ProviderFailure(ErrorKind.CONNECTION, detail)
    if isinstance(exc, httpx2.HTTPError):
        return ProviderFailure(ErrorKind.MALFORMED, detail)
    return None


@dataclass(frozen=True)
class _SdkErrors:
    """What one SDK raises and how it is classified; both read only once the SDK is loaded."""

    types: Callable[[], tuple[type[BaseException], ...]]
    classify: Callable[[BaseException, str], ProviderFailure | None]


#: Every SDK whose exceptions are known, by the module that defines them.
_SDKS: Mapping[str, _SdkErrors] = {
    "openai": _SdkErrors(_openai_errors, _openai_failure),
    "anthropic": _SdkErrors(_anthropic_errors, _anthropic_failure),
    "ollama": _SdkErrors(_ollama_errors, _ollama_failure),
    "httpx": _SdkErrors(_httpx_errors, _httpx_failure),
    # the openai and anthropic SDKs' transport; its errors are raised raw mid-stream
    "httpx2": _SdkErrors(_httpx2_errors, _httpx2_failure),
}


def _loaded() -> Iterator[_SdkErrors]:
    return (errors for module, errors in _SDKS.items() if module in sys.modules)


def provider_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions of every provider SDK loaded in this process that `classify` knows.

    For an `except` clause around a provider call: Python evaluates it only when an exception
    reaches it, so an SDK loaded since the last call (its first model was built) is included.
    An SDK that is not loaded raised nothing and is not imported for the check.
    """
    return (
        *(t for errors in _loaded() for t in errors.types()),
        json.JSONDecodeError,
        TimeoutError,
    )


def classify(exc: BaseException) -> ProviderFailure | None:
    """Classify a provider exception; None means it is not a provider failure at all."""
    detail = redact_urls(str(exc))[:500] or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return ProviderFailure(ErrorKind.TIMEOUT, detail)
    if isinstance(exc, json.JSONDecodeError):
        return ProviderFailure(ErrorKind.MALFORMED, f"malformed JSON from provider: {detail}")
    for errors in _loaded():
        failure = errors.classify(exc, detail)
        if failure is not None:
            return failure
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
