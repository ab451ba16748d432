"""`/v1` routes: HTTP only. Validate, pick JSON or SSE, and leave the work to ChatService."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import psycopg
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from graph.errors import AgentError, ErrorCode
from server.auth import CallerDep, authenticate
from server.deps import AppStateDep, ChatServiceDep
from server.disconnect import until_disconnect
from server.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    OpenAIHTTPError,
    agent_error_status,
    error_body,
)
from server.openai.adapter import chunk, completion, completion_id, now, tool_call_deltas
from server.openai.event_pump import EventPump
from server.openai.protocol import ChatCompletionRequest
from server.openai.service import (
    StreamEvent,
    TextDelta,
    ThreadRef,
    TurnDone,
    final_text,
    pending_tool_calls,
)
from server.openai.wire import (
    CHAT_COMPLETION_RESPONSES,
    MODEL_CARD_RESPONSES,
    MODEL_LIST_RESPONSES,
    ModelCard,
    ModelList,
)
from server.ops.cache import ResponseCacheDep
from server.ops.checkpointer import store_unavailable
from server.ops.ratelimit import rate_limit
from server.threads import scoped_thread_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(authenticate)])

THREAD_HEADER = "x-thread-id"
OPENWEBUI_CHAT_HEADER = "x-openwebui-chat-id"
RETRY_COUNT_HEADER = "x-stainless-retry-count"
MAX_THREAD_ID_LENGTH = 256


def thread_id_of(request: Request, body: ChatCompletionRequest) -> str | None:
    """The thread the client named, first match wins (bounded: it becomes an index key).

    `X-Thread-Id`, then Open WebUI's `X-OpenWebUI-Chat-Id`, then `metadata.thread_id`;
    none means a stateless run that stores nothing.
    """
    candidates = [
        (request.headers.get(THREAD_HEADER), "X-Thread-Id"),
        (request.headers.get(OPENWEBUI_CHAT_HEADER), "X-OpenWebUI-Chat-Id"),
        ((body.metadata or {}).get("thread_id"), "metadata.thread_id"),
    ]
    for value, where in candidates:
        if not value:
            continue
        if len(value) > MAX_THREAD_ID_LENGTH:
            raise OpenAIHTTPError(
                400,
                f"{where} is longer than {MAX_THREAD_ID_LENGTH} characters.",
                code=ErrorCode.INVALID_THREAD_ID,
                param=where,
            )
        return value
    return None


def is_retry(request: Request) -> bool:
    """The openai SDK numbers its automatic retries; a retried POST must not run twice."""
    count = request.headers.get(RETRY_COUNT_HEADER, "0")
    return count.isdigit() and int(count) > 0


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


async def _sse_stream(
    first: StreamEvent,
    events: EventPump[StreamEvent],
    *,
    run_held: AsyncExitStack,
    cid: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """OpenAI's SSE framing; an error after the first byte is one error event, then the end.

    `run_held` is what the run holds (its event pump, the thread lock). It is closed as soon
    as the run is done and before the final chunk and `[DONE]` are written: a client may
    send the next turn the instant it reads `[DONE]`, and a `kill -9` right after must not
    lose the turn, so by then the last checkpoint is committed and the thread is free.
    """
    created = now()
    common: dict[str, Any] = {
        "cid": cid,
        "model": model,
        "created": created,
        "with_usage_field": include_usage,
    }
    try:
        yield _sse(chunk(**common, delta={"role": "assistant", "content": ""}))
        event: StreamEvent = first
        while not isinstance(event, TurnDone):
            field = "content" if isinstance(event, TextDelta) else "reasoning_content"
            yield _sse(chunk(**common, delta={field: event.text}))
            event = await events.next()
        await events.join()  # the run's generator has returned: its checkpoints are written
        with anyio.CancelScope(shield=True):  # half a release would leave the thread busy
            await run_held.aclose()
        for delta in tool_call_deltas(pending_tool_calls(event.output)):
            yield _sse(chunk(**common, delta=delta))
        finish = str(event.output.get("finish_reason") or "stop")
        yield _sse(chunk(**common, finish_reason=finish))
        if include_usage:
            usage = event.output.get("usage")
            yield _sse(chunk(cid=cid, model=model, created=created, usage=usage))
        yield _sse("[DONE]")
    except AgentError as exc:
        status, _ = agent_error_status(exc)
        yield _sse(error_body(status, exc.message, code=exc.code))
    except psycopg.OperationalError as exc:
        if store_unavailable(exc):
            yield _sse(
                error_body(503, STORE_UNAVAILABLE_MESSAGE, code=ErrorCode.CHECKPOINTER_UNAVAILABLE)
            )
        else:
            logger.exception("unhandled database error while streaming")
            yield _sse(error_body(500, "The server had an error while processing your request."))
    except Exception:  # the stream's boundary: headers are sent, so report it in-band
        logger.exception("unhandled error while streaming")
        yield _sse(error_body(500, "The server had an error while processing your request."))


class _ClosingStreamingResponse(StreamingResponse):
    """A streaming response that runs `on_close` however it ends (even if never started).

    A client that leaves cancels the stream; one that leaves before the first byte never
    starts it. Either way the run must be stopped and the thread lock released.
    """

    def __init__(
        self, content: AsyncIterator[str], *, on_close: AsyncExitStack, **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream, then close what the run held, shielded from the client's cancellation."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close.aclose()


def _thread_of(request: Request, body: ChatCompletionRequest, key_id: str) -> ThreadRef | None:
    client_thread = thread_id_of(request, body)
    if client_thread is None:
        return None
    stored = scoped_thread_id(key_id, client_thread)
    return ThreadRef(client_thread, stored, delta=THREAD_HEADER in request.headers)


# Only completions spend the rate limit: chat UIs poll /v1/models.
@router.post(
    "/chat/completions",
    response_model=None,
    responses=CHAT_COMPLETION_RESPONSES,
    dependencies=[Depends(rate_limit)],
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    service: ChatServiceDep,
    cache: ResponseCacheDep,
    caller: CallerDep,
) -> Response:
    """Create a chat completion, streamed as SSE when `stream` is true."""
    thread = _thread_of(request, body, caller.key_id)
    headers = {THREAD_HEADER: thread.client_id} if thread else {}
    async with AsyncExitStack() as held:
        if thread:
            await held.enter_async_context(service.locks.hold(thread.stored_id))
        run = await service.prepare(
            body,
            thread,
            retry=is_retry(request),
            idempotency_key=request.headers.get("idempotency-key") or None,
        )
        # Response cache (server/ops/cache.py): a hit replaces the run; a miss stores its answer.
        cached = await cache.lookup(body, request, thread.client_id if thread else None)
        headers.update(cached.headers)
        cid = completion_id()
        if not body.stream:
            output = await until_disconnect(request, cached.complete(lambda: service.complete(run)))
            payload = completion(
                cid=cid,
                model=body.model,
                created=now(),
                text=final_text(output),
                finish_reason=str(output.get("finish_reason") or "stop"),
                usage=output.get("usage"),
                tool_calls=pending_tool_calls(output),
            )
            return JSONResponse(payload, headers=headers)
        events = EventPump(cached.stream(lambda: service.stream(run)))
        held.push_async_callback(events.aclose)
        # Wait for the first event so that a failure before any token is a proper HTTP error.
        first = await until_disconnect(request, events.next())
        run_held = held.pop_all()
        stream = _sse_stream(
            first,
            events,
            run_held=run_held,
            cid=cid,
            model=body.model,
            include_usage=body.include_usage,
        )
        return _ClosingStreamingResponse(
            stream,
            on_close=run_held,
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )


def _model_card(alias: str, created: int) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": created, "owned_by": "agent-service"}


@router.get("/models", response_model=ModelList, responses=MODEL_LIST_RESPONSES)
async def list_models(state: AppStateDep) -> dict[str, Any]:
    """The model aliases clients can put in `model`."""
    created = now()
    return {
        "object": "list",
        "data": [_model_card(a, created) for a in state.deps.providers.alias_names()],
    }


@router.get("/models/{model_id:path}", response_model=ModelCard, responses=MODEL_CARD_RESPONSES)
async def retrieve_model(model_id: str, state: AppStateDep) -> dict[str, Any]:
    """One model alias."""
    if model_id not in state.deps.providers.alias_names():
        raise OpenAIHTTPError(
            404,
            f"The model '{model_id}' does not exist.",
            code=ErrorCode.MODEL_NOT_FOUND,
            param="model",
        )
    return _model_card(model_id, now())
