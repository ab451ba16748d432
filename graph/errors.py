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
    PROVIDER_REJECTED_REQUEST = "provider_rejected_request"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"


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
    MALFORMED = "malformed"
    """The provider answered, but not with a usable answer (bad JSON, no event stream…)."""
    AUTH = "auth"
    CONFLICT = "conflict"
    """409: the provider saw a conflicting request; transient, worth another try."""
    BAD_REQUEST = "bad_request"
    """Any other 4xx: the provider rejected the request itself; retrying it is wasted."""
    COOLDOWN = "cooldown"


#: Errors after which the next provider in the chain is tried.
FALL_THROUGH_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.CONTEXT_LENGTH,
        ErrorKind.MALFORMED,
        ErrorKind.AUTH,
        ErrorKind.CONFLICT,
        ErrorKind.BAD_REQUEST,
    }
)
#: Errors worth retrying on the same provider before falling through.
RETRYABLE_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.CONFLICT,
    }
)
#: Errors that say the request itself was refused: when every provider that was called
#: refused it this way, the client hears the provider's status and message, not a 502.
REJECTION_KINDS = frozenset({ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_LENGTH})


@dataclass(frozen=True)
class ProviderFailure:
    """One failed provider call, classified."""

    kind: ErrorKind
    detail: str
    retry_after: float | None = None
    status: int | None = None
    """The provider's HTTP status, when it answered with one."""
    message: str | None = None
    """The provider's own error message (from its error body), for the client to read."""


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
        summary = "; ".join(_attempt_summary(a) for a in attempts)
        super().__init__(
            f"Every provider for model '{model}' failed ({summary or 'no provider available'})."
        )
        self.model = model
        self.attempts = attempts


def _attempt_summary(attempt: dict[str, object]) -> str:
    what = f"{attempt.get('provider')}: {attempt.get('error') or attempt.get('outcome')}"
    detail = attempt.get("detail")
    if attempt.get("outcome") == "error" and isinstance(detail, str) and detail:
        what += f" ({detail[:200]})"
    return what


class ProviderRejectedError(AllProvidersFailedError):
    """Every provider that was called refused the request itself (a 4xx of its own).

    Retrying it elsewhere or later changes nothing, so the client gets the provider's status
    class and message instead of "every provider failed, retry later".
    """

    code = ErrorCode.PROVIDER_REJECTED_REQUEST

    def __init__(
        self,
        model: str,
        attempts: list[dict[str, object]],
        *,
        provider: str,
        failure: ProviderFailure,
    ) -> None:
        super().__init__(model, attempts)
        said = failure.message or failure.detail
        self.message = f"The provider {provider} rejected the request: {said}"
        self.args = (self.message,)
        if failure.kind is ErrorKind.CONTEXT_LENGTH:
            self.code = ErrorCode.CONTEXT_LENGTH_EXCEEDED
        self.provider = provider
        self.failure = failure
        self.status = failure.status if failure.status in (400, 404, 413, 422) else 400
        """The provider's status when it is one a client can act on; 400 otherwise."""


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
