"""Error hierarchy of the agent: each error carries a code, and the server maps codes to HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique


@unique
class ErrorCode(StrEnum):
    """Every machine-readable code the service answers with, in `error.code` of its errors.

    One list for every door and layer: the graph's errors carry one, and the server takes
    nothing else (`OpenAIHTTPError`, `error_body`). Values are the wire; never change one.
    """

    # Raised by the graph (each `AgentError` carries its code).
    MODEL_NOT_FOUND = "model_not_found"
    """No model alias of that name (404)."""
    ALL_PROVIDERS_FAILED = "all_providers_failed"
    """Every provider of the chain failed or was cooling down (502)."""
    PROVIDER_STREAM_BROKEN = "provider_stream_broken"
    """A provider failed after tokens were streamed (in-band, 502)."""
    TOOL_INPUT_INVALID = "tool_input_invalid"
    """A tool refused its arguments (told to the model, not the client)."""
    TOOL_UNAVAILABLE = "tool_unavailable"
    """A tool cannot run here (told to the model, not the client)."""
    INVALID_REQUEST = "invalid_request"
    """The request is malformed or cannot be answered as sent (400)."""
    PROVIDER_REJECTED_REQUEST = "provider_rejected_request"
    """Every provider called refused the request itself (its 4xx)."""
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    """The conversation is too long for the providers (their 4xx)."""
    # Raised by the server, before or around a run.
    INVALID_JSON = "invalid_json"
    """The body is not JSON (400)."""
    REQUEST_TOO_LARGE = "request_too_large"
    """The body is over the size limit (413)."""
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    """A body whose `Content-Type` is not JSON, or missing (415)."""
    CROSS_SITE_REQUEST = "cross_site_request"
    """A browser's write from another site's page to a door without keys (403)."""
    UNSUPPORTED_VALUE = "unsupported_value"
    """A valid parameter value the service does not honour, such as `n` > 1 (400)."""
    TOO_MANY_MESSAGES = "too_many_messages"
    """More messages than the configured limit (400)."""
    TOO_MANY_INPUTS = "too_many_inputs"
    """More inputs in one batch than the configured limit (400)."""
    INVALID_THREAD_ID = "invalid_thread_id"
    """A thread id the client named is too long (400)."""
    MISSING_API_KEY = "missing_api_key"
    """No bearer token (401)."""
    INVALID_API_KEY = "invalid_api_key"
    """A bearer token that is no configured key (401)."""
    PERMISSION_DENIED = "permission_denied"
    """A valid client key on an operator route (`/admin`, `/metrics`) that takes admin keys
    only (403)."""
    THREAD_NOT_FOUND = "thread_not_found"
    """No stored thread with this id (404)."""
    CHECKPOINT_NOT_FOUND = "checkpoint_not_found"
    """No checkpoint with this id in the caller's thread (404)."""
    NOT_FOUND = "not_found"
    """No assistant, run or store item with this id (404, the LangGraph API door)."""
    CONFLICT = "conflict"
    """What the request would create exists already (409, the LangGraph API door)."""
    THREAD_BUSY = "thread_busy"
    """Another request is running on the thread (409)."""
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    """The caller's request budget is spent (429)."""
    INSUFFICIENT_QUOTA = "insufficient_quota"
    """The caller's key has used its monthly token or cost budget (429, not retried)."""
    CHECKPOINTER_UNAVAILABLE = "checkpointer_unavailable"
    """The conversation store (PostgreSQL) is unreachable (503)."""
    UNSUPPORTED_PARAMETER = "unsupported_parameter"
    """A parameter of OpenAI's that the service does not honour, set to change what it
    does (`background: true`, `conversation`, `prompt` on `/v1/responses`) (400)."""
    UNKNOWN_PARAMETER = "unknown_parameter"
    """A field that is no parameter of the endpoint (`/v1/responses`, as OpenAI answers) (400)."""
    RESPONSE_NOT_FOUND = "response_not_found"
    """No stored response with this id for the caller's key (404)."""
    ITEM_NOT_FOUND = "item_not_found"
    """An `item_reference` names no item of a stored response of the caller's key (400)."""
    KNOWLEDGE_UNAVAILABLE = "knowledge_unavailable"
    """The knowledge base is disabled, or its store cannot be opened or reached (503)."""
    DOCUMENT_NOT_FOUND = "document_not_found"
    """No document with this id in the knowledge base's namespace (404)."""
    REQUEST_TIMEOUT = "request_timeout"
    """The request's head or body did not arrive within HEADER_TIMEOUT / BODY_TIMEOUT (408)."""
    REQUEST_HEADERS_TOO_LARGE = "request_headers_too_large"
    """The request line and headers are over MAX_HEADER_BYTES (431)."""


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
