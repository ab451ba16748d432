"""`/v1` routes: HTTP only. Validate, pick JSON or SSE, and leave the work to ChatService."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from graph.errors import AgentError
from server.auth import authenticate
from server.deps import AppStateDep, ChatServiceDep
from server.errors import OpenAIHTTPError, agent_error_status, error_body
from server.openai_adapter import chunk, completion, completion_id, now
from server.openai_protocol import ChatCompletionRequest
from server.openai_service import StreamEvent, TextDelta, final_text

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(authenticate)])

THREAD_HEADER = "x-thread-id"
MAX_THREAD_ID_LENGTH = 256


def thread_id_of(request: Request) -> str | None:
    """The thread id the client asked for, if any (bounded: it becomes an index key)."""
    thread_id = request.headers.get(THREAD_HEADER) or None
    if thread_id is not None and len(thread_id) > MAX_THREAD_ID_LENGTH:
        raise OpenAIHTTPError(
            400,
            f"X-Thread-Id is longer than {MAX_THREAD_ID_LENGTH} characters.",
            code="invalid_thread_id",
            param="X-Thread-Id",
        )
    return thread_id


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


async def _sse_stream(
    first: StreamEvent,
    events: AsyncGenerator[StreamEvent, None],
    *,
    cid: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """OpenAI's SSE framing; an error after the first byte is one error event, then the end."""
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
        while isinstance(event, TextDelta):
            yield _sse(chunk(**common, delta={"content": event.text}))
            event = await anext(events)
        finish = str(event.output.get("finish_reason") or "stop")
        yield _sse(chunk(**common, finish_reason=finish))
        if include_usage:
            usage = event.output.get("usage")
            yield _sse(chunk(cid=cid, model=model, created=created, usage=usage))
        yield _sse("[DONE]")
    except AgentError as exc:
        status, _ = agent_error_status(exc)
        yield _sse(error_body(status, exc.message, code=exc.code.value))
    except Exception:  # the stream's boundary: headers are sent, so report it in-band
        logger.exception("unhandled error while streaming")
        yield _sse(error_body(500, "The server had an error while processing your request."))
    finally:
        await events.aclose()


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, service: ChatServiceDep
) -> Response:
    """Create a chat completion, streamed as SSE when `stream` is true."""
    thread_id = thread_id_of(request)
    run = await service.prepare(body, thread_id)
    headers = {THREAD_HEADER: thread_id} if thread_id else {}
    cid = completion_id()
    if not body.stream:
        output = await service.complete(run)
        payload = completion(
            cid=cid,
            model=body.model,
            created=now(),
            text=final_text(output),
            finish_reason=str(output.get("finish_reason") or "stop"),
            usage=output.get("usage"),
        )
        return JSONResponse(payload, headers=headers)
    events = service.stream(run)
    # Wait for the first event so that a failure before any token is a proper HTTP error.
    primed = False
    try:
        first = await anext(events)
        primed = True
    finally:
        if not primed:
            await events.aclose()
    return StreamingResponse(
        _sse_stream(first, events, cid=cid, model=body.model, include_usage=body.include_usage),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )


def _model_card(alias: str, created: int) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": created, "owned_by": "agent-service"}


@router.get("/models")
async def list_models(state: AppStateDep) -> dict[str, Any]:
    """The model aliases clients can put in `model`."""
    created = now()
    return {
        "object": "list",
        "data": [_model_card(a, created) for a in state.deps.providers.alias_names()],
    }


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, state: AppStateDep) -> dict[str, Any]:
    """One model alias."""
    if model_id not in state.deps.providers.alias_names():
        raise OpenAIHTTPError(
            404, f"The model '{model_id}' does not exist.", code="model_not_found", param="model"
        )
    return _model_card(model_id, now())
