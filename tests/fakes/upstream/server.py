"""``FakeUpstream``: the scripted server itself (routes, script, recording, acting on a step)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Send

from tests.fakes.server_thread import ServedApp, StartStop
from tests.fakes.upstream.anthropic_wire import AnthropicWire
from tests.fakes.upstream.asgi import Channel, RawResponse
from tests.fakes.upstream.embeddings import EmbeddingRequestError, embeddings_body
from tests.fakes.upstream.openai_wire import OpenAIWire
from tests.fakes.upstream.recording import RecordedRequest
from tests.fakes.upstream.rendering import Event, dumps, new_id, prompt_tokens
from tests.fakes.upstream.steps import (
    ContextLengthFault,
    CutStreamFault,
    HangFault,
    MalformedJSONFault,
    NotStreamingFault,
    Reply,
    StatusFault,
    Step,
)

Provider = Literal["openai", "anthropic"]

Responder = Callable[[RecordedRequest], Step | None]
"""Chooses the step for a request by what it asks (None: the script or default answers)."""

_DIALECTS: dict[Provider, OpenAIWire | AnthropicWire] = {
    "openai": OpenAIWire(),
    "anthropic": AnthropicWire(),
}


TEXT_ONLY_FAULT = StatusFault(
    400, message="This model does not support image input.", error_code="image_not_supported"
)
"""What ``rejects_images`` answers (as OpenAI-compatible servers word it for text models)."""


def _carries_image(body: dict[str, Any] | None) -> bool:
    """Whether a request body has an image part (OpenAI ``image_url``, Anthropic ``image``)."""
    messages = (body or {}).get("messages")
    return isinstance(messages, list) and any(
        isinstance(part, dict) and part.get("type") in ("image_url", "image")
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
    )


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
        keep_requests: Record each request in ``requests`` (off for long benchmark runs,
            whose recording would only grow).
        http: uvicorn's HTTP protocol; ``h11`` (the default) is the one whose transport
            ``Fault`` steps can drop mid-response.

    Attributes:
        app: The Starlette application.
        served: The ``ServedApp`` running ``app``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        keep_requests: bool = True,
        http: str = "h11",
    ) -> None:
        self._keep_requests = keep_requests
        self._lock = threading.Condition()
        self._queue: deque[Step] = deque()
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._streams_started = 0
        self._default: Step = Reply("ok")
        self.require_reasoning_echo = False
        """Like DeepSeek in thinking mode: answer 400 (consuming no step) to a chat completion
        whose assistant message with tool calls has no `reasoning_content`."""
        self.rejects_images = False
        """Like a text-only model: answer 400 (consuming no step) to a request that carries an
        image (``TEXT_ONLY_FAULT``)."""
        self.max_prompt_tokens: int | None = None
        """A context window: a prompt over this many tokens (words, as ``usage`` counts them)
        is refused as the provider does (OpenAI's ``context_length_exceeded`` 400,
        Anthropic's ``prompt is too long``), consuming no step. None: no limit."""
        self.responder: Responder | None = None
        """Asked first for a completion request's step (None from it: the script answers);
        called under the lock, so it must be quick."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route(
                    "/{path:path}",
                    self._unknown,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
            ],
            lifespan=self._lifespan,
        )
        self.served = ServedApp(self.app, host, port, http=http, ws="none")

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
            self.require_reasoning_echo = False
            self.rejects_images = False
            self.max_prompt_tokens = None
            self.responder = None

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
        """Answers the client abandoned: streams with chunks left to send, hangs it left."""
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
            if self._keep_requests:
                self._requests.append(recorded)
            limit = self.max_prompt_tokens
            requested = prompt_tokens(body or {}) if consume and limit is not None else 0
            if consume and self.rejects_images and _carries_image(body):
                step = TEXT_ONLY_FAULT
            elif limit is not None and requested > limit:
                step = ContextLengthFault(limit, requested)
            elif consume and self.responder is not None:
                step = self.responder(recorded)
            if consume and step is None:
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
        return Response(dumps(body), media_type="application/json")

    async def _embeddings(self, request: Request) -> Response:
        """Embeddings (``embeddings.py``); a request consumes a step like a completion.

        A ``Reply`` step (the default) is answered with the vectors, a ``StatusFault`` with
        its error; other faults are not played on this endpoint.
        """
        recorded, step = await self._record(request, consume=True)
        headers = {OpenAIWire.request_id_header: new_id("req_", 24)}
        match step:
            case StatusFault():
                if step.retry_after is not None:
                    headers["retry-after"] = f"{step.retry_after:g}"
                error = dumps(OpenAIWire.error(step))
                return Response(error, step.status, headers, media_type="application/json")
            case Reply():
                try:
                    answer = embeddings_body(recorded.body or {})
                except EmbeddingRequestError as exc:
                    error = dumps(OpenAIWire.error(StatusFault(400, message=str(exc))))
                    return Response(error, 400, headers, media_type="application/json")
                return Response(dumps(answer), 200, headers, media_type="application/json")
            case _:
                raise AssertionError(f"{step!r} is not played on /v1/embeddings")

    async def _unknown(self, request: Request) -> Response:
        await self._record(request, consume=False)
        fault = StatusFault(404, message=f"Unknown path {request.url.path} (fake upstream)")
        return Response(dumps(OpenAIWire.error(fault)), 404, media_type="application/json")

    async def _complete(self, request: Request, provider: Provider) -> Response:
        refusal = self._missing_reasoning(provider, await request.body())  # body is cached
        recorded, step = await self._record(request, consume=refusal is None)
        if refusal is not None:
            return Response(dumps(refusal), 400, media_type="application/json")
        assert step is not None
        assert self._closing is not None, "FakeUpstream app must run with lifespan events"
        closing = self._closing

        async def run(receive: Receive, send: Send) -> None:
            channel = Channel(receive, send, closing)
            async with channel.watching():
                await self._act(step, provider, recorded, channel)

        return RawResponse(run)

    def _missing_reasoning(self, provider: Provider, raw: bytes) -> dict[str, Any] | None:
        """DeepSeek's 400 for an assistant tool-call message without `reasoning_content`."""
        if provider != "openai" or not self.require_reasoning_echo:
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        messages = body.get("messages") if isinstance(body, dict) else None
        for index, message in enumerate(messages if isinstance(messages, list) else []):
            if (
                isinstance(message, dict)
                and message.get("role") == "assistant"
                and message.get("tool_calls")
                and not message.get("reasoning_content")
            ):
                return {
                    "error": {
                        "message": "Missing `reasoning_content` field in the assistant "
                        f"message at message index {index}. For more information, please "
                        "refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_request_error",
                    }
                }
        return None

    async def _act(
        self, step: Step, provider: Provider, recorded: RecordedRequest, channel: Channel
    ) -> None:
        dialect = _DIALECTS[provider]
        body = recorded.body or {}
        headers = {dialect.request_id_header: new_id("req_", 24)}
        json_headers = {**headers, "content-type": "application/json"}
        match step:
            case Reply() if recorded.stream:
                await self._stream(channel, headers, dialect.stream(step, body), step.chunk_delay)
            case Reply():
                await channel.respond(200, json_headers, dumps(dialect.completion(step, body)))
            case StatusFault():
                if step.retry_after is not None:
                    json_headers["retry-after"] = f"{step.retry_after:g}"
                await channel.respond(step.status, json_headers, dumps(dialect.error(step)))
            case ContextLengthFault():
                await channel.respond(400, json_headers, dumps(dialect.context_length(step)))
            case HangFault():
                await channel.pause(step.seconds)
                if channel.disconnected.is_set():
                    self._count_disconnect()  # it gave up on an answer still to come
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
                await channel.respond(200, json_headers, dumps(completion))
            case NotStreamingFault(body="empty"):
                await self._stream(channel, headers, [], 0.0)
            case NotStreamingFault(body="html"):
                page = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
                html_headers = {**headers, "content-type": "text/html"}
                await channel.respond(200, html_headers, page)

    def _count_disconnect(self) -> None:
        with self._lock:
            self._disconnects += 1
            self._lock.notify_all()

    async def _stream(
        self,
        channel: Channel,
        headers: Mapping[str, str],
        events: list[Event],
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
                    self._count_disconnect()
                else:
                    await channel.abort()
                return
            await channel.body(event.data, more=True)
        if abort:
            await channel.abort()
        else:
            await channel.body(b"", more=False)
