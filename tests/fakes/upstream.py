"""A scripted fake LLM provider speaking the OpenAI and Anthropic wire protocols.

``FakeUpstream`` serves, over real HTTP on 127.0.0.1:

* ``POST /v1/chat/completions`` -- OpenAI Chat Completions (JSON or SSE stream),
* ``POST /v1/messages`` -- Anthropic Messages (JSON or named-event SSE stream),
* ``GET /v1/models`` -- an OpenAI model list with the single model ``fake-model``.

Every request is recorded, then answered by the next scripted *step* (FIFO, shared
by both completion endpoints) or by ``default`` when the script is empty. A step is
a ``Reply`` (rendered for the endpoint and the request's ``stream`` flag) or a fault
built with ``Fault``.

Example:
    >>> with FakeUpstream() as upstream:
    ...     upstream.script(Fault.rate_limit(retry_after=1), Reply("hello"))
    ...     client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tests.fakes.server_thread import ServedApp, StartStop

__all__ = [
    "ContextLengthFault",
    "CutStreamFault",
    "FakeUpstream",
    "Fault",
    "HangFault",
    "MalformedJSONFault",
    "RecordedRequest",
    "Reply",
    "StatusFault",
    "Step",
    "ToolCallSpec",
]

Provider = Literal["openai", "anthropic"]


# --------------------------------------------------------------------------- steps


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
    """

    text: str = ""
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    finish_reason: str | None = None
    chunk_delay: float = 0.0
    model: str | None = None


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


# ----------------------------------------------------------------------- recording


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake upstream received.

    Attributes:
        path: URL path, e.g. ``/v1/chat/completions``.
        headers: Request headers with lower-cased names.
        body: Parsed JSON body, or ``None`` when empty or not JSON.
        method: HTTP method.
    """

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    method: str = "POST"

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed response."""
        return bool(self.body and self.body.get("stream"))


# ------------------------------------------------------------------------ rendering


_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_WORDS = re.compile(r"\s*\S+")


def _split_text(text: str) -> list[str]:
    """Split ``text`` into word chunks (leading spaces kept) that join back to ``text``."""
    parts = _WORDS.findall(text)
    if not parts:
        return [text] if text else []
    tail = text[sum(len(p) for p in parts) :]
    if tail:
        parts[-1] += tail
    return parts


def _split_fragments(data: str, pieces: int = 3) -> list[str]:
    """Split ``data`` into at least two fragments (when it has 2+ characters)."""
    if len(data) < 2:
        return [data]
    size = max(1, -(-len(data) // pieces))
    return [data[i : i + size] for i in range(0, len(data), size)]


def _count_words(value: object) -> int:
    """Count words in message-like JSON: strings, ``text``/``content`` of parts, lists."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_words(value.get(key)) for key in ("text", "content"))
    return 0


def _usage(reply: Reply, body: Mapping[str, Any]) -> tuple[int, int]:
    if reply.usage is not None:
        return reply.usage
    prompt = _count_words(body.get("messages")) + _count_words(body.get("system"))
    completion = len(reply.text.split()) + sum(
        len(json.dumps(call.arguments).split()) for call in reply.tool_calls
    )
    return prompt, completion


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class _Event:
    """One SSE event; ``paced`` events are separated by ``Reply.chunk_delay``."""

    data: bytes
    paced: bool = False


class _OpenAI:
    """Renders steps as OpenAI Chat Completions responses."""

    request_id_header = "x-request-id"

    @staticmethod
    def _model(reply: Reply, body: Mapping[str, Any]) -> str:
        return reply.model or str(body.get("model") or "fake-model")

    @staticmethod
    def _finish(reply: Reply) -> str:
        if reply.finish_reason is not None:
            return _OPENAI_FINISH.get(reply.finish_reason, reply.finish_reason)
        return "tool_calls" if reply.tool_calls else "stop"

    @staticmethod
    def _usage(reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
        prompt, completion = _usage(reply, body)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def completion(self, reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or _new_id("call_"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": _new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(reply, body),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(reply),
                }
            ],
            "usage": self._usage(reply, body),
            "service_tier": "default",
            "system_fingerprint": None,
        }

    def _chunker(
        self, reply: Reply, body: Mapping[str, Any]
    ) -> Callable[[list[dict[str, Any]]], bytes]:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base: dict[str, Any] = {
            "id": _new_id("chatcmpl-", 29),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model(reply, body),
            "service_tier": "default",
            "system_fingerprint": None,
        }

        def chunk(choices: list[dict[str, Any]]) -> bytes:
            payload = {**base, "choices": choices}
            if include_usage:
                payload["usage"] = None
            return b"data: " + _dumps(payload) + b"\n\n"

        return chunk

    @staticmethod
    def _delta(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[_Event]:
        chunk = self._chunker(reply, body)
        role_content = "" if reply.text or not reply.tool_calls else None
        events = [_Event(chunk(self._delta({"role": "assistant", "content": role_content})))]
        events += [
            _Event(chunk(self._delta({"content": part})), paced=True)
            for part in _split_text(reply.text)
        ]
        for index, call in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": call.id or _new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(_Event(chunk(self._delta({"tool_calls": [head]})), paced=True))
            for fragment in _split_fragments(json.dumps(call.arguments)):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                events.append(_Event(chunk(self._delta(delta)), paced=True))
        events.append(_Event(chunk(self._delta({}, self._finish(reply)))))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = json.loads(chunk([])[len(b"data: ") :])
            final["usage"] = self._usage(reply, body)
            events.append(_Event(b"data: " + _dumps(final) + b"\n\n"))
        events.append(_Event(b"data: [DONE]\n\n"))
        return events

    def partial_stream(self, fault: CutStreamFault, body: Mapping[str, Any]) -> list[_Event]:
        reply = Reply(fault.text)
        chunk = self._chunker(reply, body)
        events = [_Event(chunk(self._delta({"role": "assistant", "content": ""})))]
        events += [
            _Event(chunk(self._delta({"content": part})))
            for part in _split_text(fault.text)[: fault.after_chunks]
        ]
        return events

    @staticmethod
    def malformed_body() -> bytes:
        return b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"ind'

    @staticmethod
    def malformed_stream() -> list[_Event]:
        return [_Event(b'data: {"id": "chatcmpl-broken", "object": "chat.completion.ch\n\n')]

    @staticmethod
    def error(fault: StatusFault) -> dict[str, Any]:
        status = fault.status
        default_type = (
            "requests"
            if status == 429
            else "server_error"
            if status >= 500
            else "invalid_request_error"
        )
        default_messages = {
            400: "Invalid request.",
            401: "Incorrect API key provided: test. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            404: "The model `fake-model` does not exist or you do not have access to it.",
            429: "Rate limit reached for fake-model in organization org-fake on requests "
            "per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            500: "The server had an error while processing your request. Sorry about that!",
            503: "The engine is currently overloaded, please try again later.",
        }
        default_codes = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
        return {
            "error": {
                "message": fault.message or default_messages.get(status, _phrase(status)),
                "type": fault.error_type or default_type,
                "param": None,
                "code": fault.error_code or default_codes.get(status),
            }
        }

    @staticmethod
    def context_length(fault: ContextLengthFault) -> dict[str, Any]:
        return {
            "error": {
                "message": (
                    f"This model's maximum context length is {fault.limit} tokens. "
                    f"However, your messages resulted in {fault.requested} tokens. "
                    "Please reduce the length of the messages."
                ),
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }


class _Anthropic:
    """Renders steps as Anthropic Messages responses."""

    request_id_header = "request-id"

    @staticmethod
    def _model(reply: Reply, body: Mapping[str, Any]) -> str:
        return reply.model or str(body.get("model") or "claude-fake")

    @staticmethod
    def _stop(reply: Reply) -> str:
        if reply.finish_reason is not None:
            return _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)
        return "tool_use" if reply.tool_calls else "end_turn"

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    @staticmethod
    def _event(name: str, payload: dict[str, Any], *, paced: bool = False) -> _Event:
        return _Event(f"event: {name}\ndata: ".encode() + _dumps(payload) + b"\n\n", paced)

    def _message(self, reply: Reply, body: Mapping[str, Any], input_tokens: int) -> dict[str, Any]:
        return {
            "id": _new_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": self._model(reply, body),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(input_tokens, 1),
        }

    def completion(self, reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
        prompt, completion = _usage(reply, body)
        content: list[dict[str, Any]] = []
        if reply.text or not reply.tool_calls:
            content.append({"type": "text", "text": reply.text})
        content += [
            {
                "type": "tool_use",
                "id": call.id or _new_id("toolu_01", 22),
                "name": call.name,
                "input": call.arguments,
            }
            for call in reply.tool_calls
        ]
        message = self._message(reply, body, prompt)
        message.update(
            content=content, stop_reason=self._stop(reply), usage=self._usage(prompt, completion)
        )
        return message

    def _text_block(self, index: int, parts: list[str]) -> list[_Event]:
        events = [
            self._event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        ]
        events += [
            self._event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": part},
                },
                paced=True,
            )
            for part in parts
        ]
        return events

    def _stop_block(self, index: int) -> _Event:
        return self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[_Event]:
        prompt, completion = _usage(reply, body)
        message = self._message(reply, body, prompt)
        events = [
            self._event("message_start", {"type": "message_start", "message": message}),
            self._event("ping", {"type": "ping"}),
        ]
        index = 0
        if reply.text or not reply.tool_calls:
            events += self._text_block(index, _split_text(reply.text))
            events.append(self._stop_block(index))
            index += 1
        for call in reply.tool_calls:
            block = {
                "type": "tool_use",
                "id": call.id or _new_id("toolu_01", 22),
                "name": call.name,
                "input": {},
            }
            events.append(
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            for fragment in ["", *_split_fragments(json.dumps(call.arguments))]:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                events.append(
                    self._event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        paced=True,
                    )
                )
            events.append(self._stop_block(index))
            index += 1
        events.append(
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
                    "usage": {"output_tokens": completion},
                },
            )
        )
        events.append(self._event("message_stop", {"type": "message_stop"}))
        return events

    def partial_stream(self, fault: CutStreamFault, body: Mapping[str, Any]) -> list[_Event]:
        reply = Reply(fault.text)
        prompt, _ = _usage(reply, body)
        message = self._message(reply, body, prompt)
        events = [self._event("message_start", {"type": "message_start", "message": message})]
        events += self._text_block(0, _split_text(fault.text)[: fault.after_chunks])
        return events

    @staticmethod
    def malformed_body() -> bytes:
        return b'{"id": "msg_broken", "type": "message", "content": [{"ty'

    @staticmethod
    def malformed_stream() -> list[_Event]:
        return [_Event(b'event: message_start\ndata: {"type": "message_start", "mess\n\n')]

    @staticmethod
    def error(fault: StatusFault) -> dict[str, Any]:
        status = fault.status
        default_types = {
            400: "invalid_request_error",
            401: "authentication_error",
            402: "billing_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            504: "timeout_error",
            529: "overloaded_error",
        }
        default_messages = {
            401: "invalid x-api-key",
            404: "model: claude-fake",
            429: "This request would exceed the rate limit for your organization "
            "of 50 requests per minute. Please try again later.",
            500: "Internal server error",
            529: "Overloaded",
        }
        error_type = fault.error_type or default_types.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {
            "type": "error",
            "error": {
                "type": error_type,
                "message": fault.message or default_messages.get(status, _phrase(status)),
            },
            "request_id": _new_id("req_01", 22),
        }

    @staticmethod
    def context_length(fault: ContextLengthFault) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": f"prompt is too long: {fault.requested} tokens > {fault.limit} maximum",
            },
            "request_id": _new_id("req_01", 22),
        }


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


_DIALECTS: dict[Provider, _OpenAI | _Anthropic] = {"openai": _OpenAI(), "anthropic": _Anthropic()}


# ------------------------------------------------------------------ ASGI plumbing


class _RawResponse(Response):
    """A response whose ASGI exchange is driven by ``run(receive, send)``."""

    def __init__(self, run: Callable[[Receive, Send], Awaitable[None]]) -> None:
        super().__init__()
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._run(receive, send)


class _Channel:
    """One request's ASGI channel, watching for the client going away.

    A background task consumes ``receive()`` until ``http.disconnect`` (uvicorn
    reports it as soon as the peer closes the connection), so long pauses can be
    cut short when the client leaves or when the fake upstream shuts down.
    """

    def __init__(self, receive: Receive, send: Send, closing: asyncio.Event) -> None:
        self._receive = receive
        self._send = send
        self._closing = closing
        self.disconnected = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            message: Message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Self]:
        self._watcher = asyncio.create_task(self._watch())
        try:
            yield self
        finally:
            self._watcher.cancel()
            await asyncio.wait([self._watcher])

    @property
    def gone(self) -> bool:
        """Whether the client disconnected or the server is shutting down."""
        return self.disconnected.is_set() or self._closing.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, waking early when the client leaves or the server closes."""
        if seconds <= 0 or self.gone:
            await asyncio.sleep(0)
            return
        waiters = [
            asyncio.create_task(self.disconnected.wait()),
            asyncio.create_task(self._closing.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.wait(waiters)

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, *, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        await self.start(status, {**headers, "content-length": str(len(data))})
        await self.body(data, more=False)

    async def abort(self) -> None:
        """Drop the TCP connection without finishing the response.

        uvicorn's h11 protocol exposes the transport on the object whose bound
        method is ``receive``; closing it makes the client see the connection end
        mid-response (or before any response). Without that, raise so uvicorn
        drops the connection itself (it logs the exception).
        """
        transport = getattr(getattr(self._receive, "__self__", None), "transport", None)
        close = getattr(transport, "close", None)  # asyncio's or uvloop's transport
        if not callable(close):
            raise _ConnectionAbortError("fake upstream dropped the connection")
        close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.disconnected.wait(), timeout=2.0)


class _ConnectionAbortError(RuntimeError):
    """Raised inside the ASGI app to make the server drop the connection."""


# --------------------------------------------------------------------- the server


class FakeUpstream(StartStop):
    """A real HTTP server impersonating OpenAI and Anthropic, scripted per test.

    The server runs on its own thread and event loop, so it works the same from
    sync and async tests. Scripting, ``requests`` and ``disconnects`` are guarded
    by a lock. Requests are recorded before their step is acted on (a request that
    hangs or is cut is still recorded). A ``FakeUpstream`` cannot be restarted once
    stopped; share one per module/session and call ``reset()`` per test.

    Args:
        host: Interface to listen on.
        port: Port to listen on; ``None`` picks a free one.

    Attributes:
        app: The Starlette application.
        served: The ``ServedApp`` running ``app``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self._lock = threading.Condition()
        self._queue: deque[Step] = deque()
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._streams_started = 0
        self._default: Step = Reply("ok")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route(
                    "/{path:path}",
                    self._unknown,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
            ],
            lifespan=self._lifespan,
        )
        self.served = ServedApp(self.app, host, port, http="h11", ws="none")

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start serving; returns once the server accepts connections.

        Returns:
            This instance.
        """
        self.served.start()
        return self

    def stop(self) -> None:
        """Stop the server; hung handlers and slow streams are cut short."""
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed in the meantime
                loop.call_soon_threadsafe(closing.set)
        self.served.stop()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        yield

    # ------------------------------------------------------------------ URLs

    @property
    def url(self) -> str:
        """Server root, e.g. ``http://127.0.0.1:54321``."""
        return self.served.url

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for OpenAI clients (ends in ``/v1``)."""
        return f"{self.served.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for Anthropic clients (they append ``/v1/messages``)."""
        return self.served.url

    # ------------------------------------------------------------- scripting

    def script(self, *steps: Step) -> None:
        """Append steps to the queue; each completion request consumes one (FIFO).

        Args:
            *steps: ``Reply`` or fault steps.
        """
        with self._lock:
            self._queue.extend(steps)

    def reset(self) -> None:
        """Clear the script, recorded requests and disconnect count; restore ``default``."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._disconnects = 0
            self._streams_started = 0
            self._default = Reply("ok")

    @property
    def default(self) -> Step:
        """Step used when the script is empty (initially ``Reply("ok")``)."""
        with self._lock:
            return self._default

    @default.setter
    def default(self, step: Step) -> None:
        with self._lock:
            self._default = step

    @property
    def pending(self) -> int:
        """Number of scripted steps not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of all recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def disconnects(self) -> int:
        """Streamed responses the client abandoned while chunks were still left to send."""
        with self._lock:
            return self._disconnects

    def wait_for_streams(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``count`` event streams have sent their headers (they are under way).

        Args:
            count: Number of started streams to wait for.
            timeout: Maximum seconds to wait.

        Returns:
            Whether the count was reached in time.
        """
        with self._lock:
            return self._lock.wait_for(lambda: self._streams_started >= count, timeout)

    def wait_for_disconnects(self, count: int = 1, timeout: float = 2.0) -> bool:
        """Block until ``disconnects >= count`` (the server notices asynchronously).

        Args:
            count: Number of disconnects to wait for.
            timeout: Maximum seconds to wait.

        Returns:
            Whether the count was reached in time.
        """
        with self._lock:
            return self._lock.wait_for(lambda: self._disconnects >= count, timeout)

    # --------------------------------------------------------------- handlers

    async def _record(
        self, request: Request, *, consume: bool
    ) -> tuple[RecordedRequest, Step | None]:
        """Record ``request`` and, atomically with it, take the step that answers it."""
        raw = await request.body()
        body: dict[str, Any] | None = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                parsed = None
            body = parsed if isinstance(parsed, dict) else None
        recorded = RecordedRequest(
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            method=request.method,
        )
        step: Step | None = None
        with self._lock:
            self._requests.append(recorded)
            if consume:
                step = self._queue.popleft() if self._queue else self._default
        return recorded, step

    async def _chat_completions(self, request: Request) -> Response:
        return await self._complete(request, "openai")

    async def _messages(self, request: Request) -> Response:
        return await self._complete(request, "anthropic")

    async def _models(self, request: Request) -> Response:
        await self._record(request, consume=False)
        body = {
            "object": "list",
            "data": [
                {"id": "fake-model", "object": "model", "created": 1700000000, "owned_by": "fake"}
            ],
        }
        return Response(_dumps(body), media_type="application/json")

    async def _unknown(self, request: Request) -> Response:
        await self._record(request, consume=False)
        fault = StatusFault(404, message=f"Unknown path {request.url.path} (fake upstream)")
        return Response(_dumps(_OpenAI.error(fault)), 404, media_type="application/json")

    async def _complete(self, request: Request, provider: Provider) -> Response:
        recorded, step = await self._record(request, consume=True)
        assert step is not None
        assert self._closing is not None, "FakeUpstream app must run with lifespan events"
        closing = self._closing

        async def run(receive: Receive, send: Send) -> None:
            channel = _Channel(receive, send, closing)
            async with channel.watching():
                await self._act(step, provider, recorded, channel)

        return _RawResponse(run)

    async def _act(
        self, step: Step, provider: Provider, recorded: RecordedRequest, channel: _Channel
    ) -> None:
        dialect = _DIALECTS[provider]
        body = recorded.body or {}
        headers = {dialect.request_id_header: _new_id("req_", 24)}
        json_headers = {**headers, "content-type": "application/json"}
        match step:
            case Reply() if recorded.stream:
                await self._stream(channel, headers, dialect.stream(step, body), step.chunk_delay)
            case Reply():
                await channel.respond(200, json_headers, _dumps(dialect.completion(step, body)))
            case StatusFault():
                if step.retry_after is not None:
                    json_headers["retry-after"] = f"{step.retry_after:g}"
                await channel.respond(step.status, json_headers, _dumps(dialect.error(step)))
            case ContextLengthFault():
                await channel.respond(400, json_headers, _dumps(dialect.context_length(step)))
            case HangFault():
                await channel.pause(step.seconds)
                if channel.disconnected.is_set():
                    return
                if channel.gone:  # server shutting down
                    await channel.abort()
                    return
                await self._act(Reply("late"), provider, recorded, channel)
            case MalformedJSONFault() if recorded.stream:
                await self._stream(channel, headers, dialect.malformed_stream(), 0.0)
            case MalformedJSONFault():
                await channel.respond(200, json_headers, dialect.malformed_body())
            case CutStreamFault() if recorded.stream:
                events = dialect.partial_stream(step, body)
                await self._stream(channel, headers, events, 0.0, abort=True)
            case CutStreamFault():
                await channel.abort()
            case NotStreamingFault(body="json"):
                completion = dialect.completion(Reply("not streamed"), body)
                await channel.respond(200, json_headers, _dumps(completion))
            case NotStreamingFault(body="empty"):
                await self._stream(channel, headers, [], 0.0)
            case NotStreamingFault(body="html"):
                page = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
                html_headers = {**headers, "content-type": "text/html"}
                await channel.respond(200, html_headers, page)

    async def _stream(
        self,
        channel: _Channel,
        headers: Mapping[str, str],
        events: list[_Event],
        delay: float,
        *,
        abort: bool = False,
    ) -> None:
        sse_headers = {
            **headers,
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
        }
        await channel.start(200, sse_headers)
        with self._lock:
            self._streams_started += 1
            self._lock.notify_all()
        paced_before = False
        for event in events:
            if event.paced:
                if paced_before:
                    await channel.pause(delay)
                paced_before = True
            if channel.gone:
                if channel.disconnected.is_set():
                    with self._lock:
                        self._disconnects += 1
                        self._lock.notify_all()
                else:
                    await channel.abort()
                return
            await channel.body(event.data, more=True)
        if abort:
            await channel.abort()
        else:
            await channel.body(b"", more=False)
