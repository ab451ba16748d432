"""``Fault``: constructors for the fault steps (``Fault.rate_limit()``, ``Fault.hang(5)``, ...)."""

from __future__ import annotations

from typing import Literal

from tests.fakes.upstream.steps import (
    ContextLengthFault,
    CutStreamFault,
    HangFault,
    MalformedJSONFault,
    NotStreamingFault,
    StatusFault,
)


class Fault:
    """Constructors for fault steps (``Fault.rate_limit()``, ``Fault.hang(5)``, ...)."""

    @staticmethod
    def status(
        code: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
    ) -> StatusFault:
        """Answer with HTTP ``code`` and a provider-shaped error body.

        Args:
            code: HTTP status code.
            retry_after: ``Retry-After`` header value in seconds, if any.
            message: Error message (default depends on provider and status).
            error_type: Error type (default depends on provider and status).
            error_code: OpenAI error code (default: ``rate_limit_exceeded`` for 429).

        Returns:
            The step.
        """
        return StatusFault(code, retry_after, message, error_type, error_code)

    @staticmethod
    def rate_limit(retry_after: float | None = 1) -> StatusFault:
        """429 Too Many Requests, with a ``Retry-After`` header unless ``None``.

        Args:
            retry_after: ``Retry-After`` header value in seconds.

        Returns:
            The step.
        """
        return StatusFault(429, retry_after=retry_after)

    @staticmethod
    def server_error(message: str | None = None) -> StatusFault:
        """500 Internal Server Error.

        Args:
            message: Error message (a provider-like default when ``None``).

        Returns:
            The step.
        """
        return StatusFault(500, message=message)

    @staticmethod
    def context_length(limit: int = 128000, requested: int = 200000) -> ContextLengthFault:
        """400 "context length exceeded" (OpenAI code ``context_length_exceeded``).

        Args:
            limit: The model's maximum context, in tokens.
            requested: The (pretended) request size, in tokens.

        Returns:
            The step.
        """
        return ContextLengthFault(limit, requested)

    @staticmethod
    def hang(seconds: float) -> HangFault:
        """Accept the request and stay silent for ``seconds`` (to trigger client timeouts).

        Args:
            seconds: How long to stay silent.

        Returns:
            The step.
        """
        return HangFault(seconds)

    @staticmethod
    def malformed_json() -> MalformedJSONFault:
        """200 whose JSON body (or first SSE event) does not parse.

        Returns:
            The step.
        """
        return MalformedJSONFault()

    @staticmethod
    def cut_stream(text: str, after_chunks: int) -> CutStreamFault:
        """Stream the first ``after_chunks`` chunks of ``text``, then drop the connection.

        Args:
            text: Text to start streaming.
            after_chunks: Text chunks sent before the connection is dropped.

        Returns:
            The step.
        """
        return CutStreamFault(text, after_chunks)

    @staticmethod
    def not_streaming(body: Literal["json", "empty", "html"]) -> NotStreamingFault:
        """Answer a streamed request with a plain JSON completion, no events, or an HTML page.

        Args:
            body: What to send instead of an event stream.

        Returns:
            The step.
        """
        return NotStreamingFault(body)
