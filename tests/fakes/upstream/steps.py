"""The steps a test scripts: a ``Reply`` or a fault, each answering one completion request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ToolCallSpec:
    """A tool call the fake model makes.

    Attributes:
        name: Function / tool name.
        arguments: Arguments object (sent as a JSON string to OpenAI clients and as
            the ``input`` object to Anthropic clients).
        id: Call id; generated (``call_...`` / ``toolu_...``) when ``None``.
    """

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful model answer.

    Attributes:
        text: Assistant text (may be empty when there are tool calls).
        tool_calls: Tool calls to emit after the text.
        usage: ``(prompt_tokens, completion_tokens)``; by default word counts of
            the request messages and of the reply.
        finish_reason: Overrides the finish/stop reason. OpenAI and Anthropic names
            are translated for the other provider (``stop``/``end_turn``,
            ``length``/``max_tokens``, ``tool_calls``/``tool_use``); others pass through.
        chunk_delay: Seconds between content chunks (text and tool-argument
            fragments) of a streamed answer; ignored for non-stream requests.
        model: Model name to report; defaults to the request's ``model``.
        reasoning: The model's reasoning, sent before the text: for OpenAI clients in the
            message's (or each delta's) ``reasoning_field``, for Anthropic clients as a
            ``thinking`` block signed with ``thinking_signature(reasoning)``.
        reasoning_field: ``reasoning_content`` (DeepSeek, vLLM) or ``reasoning`` (newer
            vLLM, OpenRouter).
    """

    text: str = ""
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None
    chunk_delay: float = 0.0
    model: str | None = None
    reasoning: str | None = None
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"


@dataclass(frozen=True)
class StatusFault:
    """Answer with an HTTP error status and a provider-shaped error body.

    Attributes:
        status: HTTP status code.
        retry_after: Value of the ``Retry-After`` header (seconds), if any.
        message: Error message; a provider/status specific default when ``None``.
        error_type: ``error.type``; a provider/status specific default when ``None``.
        error_code: OpenAI ``error.code`` (Anthropic errors have no code).
    """

    status: int
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class ContextLengthFault:
    """Answer 400 "context length exceeded" exactly as the provider words it.

    Attributes:
        limit: The model's maximum context, in tokens.
        requested: The (pretended) size of the request, in tokens.
    """

    limit: int = 128000
    requested: int = 200000


@dataclass(frozen=True)
class HangFault:
    """Send nothing for ``seconds``, then (if the client is still there) ``Reply("late")``.

    Attributes:
        seconds: How long to stay silent.
    """

    seconds: float


@dataclass(frozen=True)
class MalformedJSONFault:
    """Answer 200 with a body (or, for streams, an SSE event) that is not valid JSON."""


@dataclass(frozen=True)
class CutStreamFault:
    """Start streaming ``text``, then drop the connection after ``after_chunks`` chunks.

    For a non-stream request the connection is dropped without any response.

    Attributes:
        text: Text whose first chunks are sent.
        after_chunks: Number of text chunks sent before the connection is dropped.
    """

    text: str
    after_chunks: int


@dataclass(frozen=True)
class NotStreamingFault:
    """Answer a *streamed* request with something that is not an event stream.

    Several local OpenAI-compatible servers do this: a plain JSON completion where an event
    stream was asked for, an event stream with no events, or a proxy's HTML error page with
    status 200. A non-stream request gets the same body.

    Attributes:
        body: ``"json"`` (a complete ``chat.completion``), ``"empty"`` (``text/event-stream``
            with no events) or ``"html"`` (``text/html`` error page).
    """

    body: Literal["json", "empty", "html"]


Step = (
    Reply
    | StatusFault
    | ContextLengthFault
    | HangFault
    | MalformedJSONFault
    | CutStreamFault
    | NotStreamingFault
)
