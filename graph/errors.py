"""Error hierarchy of the agent: each error carries a code, and the server maps codes to HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable machine-readable codes; the OpenAI door puts them in `error.code`."""

    MODEL_NOT_FOUND = "model_not_found"
    ALL_PROVIDERS_FAILED = "all_providers_failed"
    PROVIDER_STREAM_BROKEN = "provider_stream_broken"
    TOOL_INPUT_INVALID = "tool_input_invalid"
    TOOL_UNAVAILABLE = "tool_unavailable"
    INVALID_REQUEST = "invalid_request"


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    code: ErrorCode = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelNotFoundError(AgentError):
    """The requested model alias is not configured."""

    code = ErrorCode.MODEL_NOT_FOUND

    def __init__(self, model: str, available: list[str]) -> None:
        super().__init__(
            f"The model '{model}' does not exist. Available models: {', '.join(available)}."
        )
        self.model = model


class ErrorKind(StrEnum):
    """Classes of provider failure, as recorded in attempts and metrics."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    CONTEXT_LENGTH = "context_length"
    BAD_RESPONSE = "bad_response"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    COOLDOWN = "cooldown"


#: Errors after which the next provider in the chain is tried.
FALL_THROUGH_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.CONTEXT_LENGTH,
        ErrorKind.BAD_RESPONSE,
        ErrorKind.AUTH,
    }
)
#: Errors worth retrying on the same provider before falling through.
RETRYABLE_KINDS = frozenset(
    {ErrorKind.RATE_LIMIT, ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT, ErrorKind.CONNECTION}
)


@dataclass(frozen=True)
class ProviderFailure:
    """One failed provider call, classified."""

    kind: ErrorKind
    detail: str
    retry_after: float | None = None


class ProviderError(AgentError):
    """A provider call failed; `failure.kind` says whether to retry or fall through."""

    code = ErrorCode.ALL_PROVIDERS_FAILED

    def __init__(self, provider: str, failure: ProviderFailure) -> None:
        super().__init__(f"{provider}: {failure.kind.value}: {failure.detail}")
        self.provider = provider
        self.failure = failure


class AllProvidersFailedError(AgentError):
    """Every provider of the chain failed or was cooling down."""

    code = ErrorCode.ALL_PROVIDERS_FAILED

    def __init__(self, model: str, attempts: list[dict[str, object]]) -> None:
        summary = "; ".join(
            f"{a.get('provider')}: {a.get('error') or a.get('outcome')}" for a in attempts
        )
        super().__init__(
            f"Every provider for model '{model}' failed ({summary or 'no provider available'})."
        )
        self.model = model
        self.attempts = attempts


class ProviderStreamBrokenError(AgentError):
    """A provider failed after tokens had been streamed; switching would garble the answer."""

    code = ErrorCode.PROVIDER_STREAM_BROKEN

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(f"The stream from provider '{provider}' broke mid-answer: {detail}")
        self.provider = provider


class ToolInputError(AgentError):
    """A tool rejected its arguments; the model sees the message and may try again."""

    code = ErrorCode.TOOL_INPUT_INVALID


class ToolUnavailableError(AgentError):
    """A tool cannot run here (unconfigured or its backend failed); told to the model."""

    code = ErrorCode.TOOL_UNAVAILABLE
