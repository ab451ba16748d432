"""`/v1` routes: HTTP only. Validate, pick JSON or SSE, and leave the work to ChatService.

`/v1/completions` (the legacy text completions) is translated onto the same service by
`server.chat.completions`.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from graph.errors import ErrorCode
from nodes.providers.catalogue import ProviderCatalogue
from server.chat import completions as legacy
from server.chat.adapter import completion, completion_id, now
from server.chat.cached import lookup
from server.chat.protocol import ChatCompletionRequest, CompletionRequest
from server.chat.service import ChatService
from server.chat.streaming import sse_stream
from server.chat.wire import (
    CHAT_COMPLETION_RESPONSES,
    COMPLETION_RESPONSES,
    MODEL_CARD_RESPONSES,
    MODEL_LIST_RESPONSES,
    ModelCard,
    ModelList,
)
from server.deps import (
    AppStateDep,
    CallerDep,
    ResponseCacheDep,
    authenticate,
    rate_limit,
    within_budget,
)
from server.errors import OpenAIHTTPError
from server.turns.disconnect import ClosingStreamingResponse, until_disconnect
from server.turns.events import final_reasoning, final_text, pending_tool_calls
from server.turns.pump import EventPump
from server.turns.threads import thread_of

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(authenticate)])

RETRY_COUNT_HEADER = "x-stainless-retry-count"


async def chat_service(state: AppStateDep, caller: CallerDep) -> ChatService:
    """The door's service over the app's graphs (built per request: it only holds references)."""
    return ChatService(
        graph=state.graph,
        stateless_graph=state.stateless_graph,
        providers=state.deps.providers,
        settings=state.settings,
        images=state.deps.images,
        caller=caller.key_id,
    )


ChatServiceDep = Annotated[ChatService, Depends(chat_service)]


def is_retry(request: Request) -> bool:
    """The openai SDK numbers its automatic retries; a retried POST must not run twice."""
    count = request.headers.get(RETRY_COUNT_HEADER, "0")
    return count.isdigit() and int(count) > 0


# Only completions spend the rate limit: chat UIs poll /v1/models.
@router.post(
    "/chat/completions",
    response_model=None,
    responses=CHAT_COMPLETION_RESPONSES,
    dependencies=[Depends(rate_limit), Depends(within_budget)],
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    state: AppStateDep,
    service: ChatServiceDep,
    cache: ResponseCacheDep,
    caller: CallerDep,
) -> Response:
    """Create a chat completion, streamed as SSE when `stream` is true."""
    thread = thread_of(caller.key_id, request.headers, metadata=body.metadata)
    headers = dict(thread.header) if thread else {}
    async with AsyncExitStack() as held:
        if thread:
            await held.enter_async_context(state.locks.hold(thread.stored_id))
        run = await service.prepare(
            body,
            thread,
            retry=is_retry(request),
            idempotency_key=request.headers.get("idempotency-key") or None,
        )
        # Response cache (server/stores/cache.py): a hit replaces the run; a miss stores its answer.
        knowledge = state.deps.knowledge
        cached = await lookup(
            cache,
            body,
            request.headers,
            stateful=thread is not None,
            caller_id=caller.key_id,
            own_data=knowledge is not None and knowledge.has_documents([caller.key_id]),
        )
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
                reasoning=final_reasoning(output) if state.settings.show_reasoning else None,
            )
            return JSONResponse(payload, headers=headers)
        events = EventPump(cached.stream(lambda: service.stream(run)))
        held.push_async_callback(events.aclose)
        # Wait for the first event so that a failure before any token is a proper HTTP error.
        first = await until_disconnect(request, events.next())
        run_held = held.pop_all()
        stream = sse_stream(
            first,
            events,
            run_held=run_held,
            cid=cid,
            model=body.model,
            include_usage=body.include_usage,
        )
        return ClosingStreamingResponse(
            stream,
            on_close=run_held,
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )


@router.post(
    "/completions",
    response_model=None,
    responses=COMPLETION_RESPONSES,
    dependencies=[Depends(rate_limit), Depends(within_budget)],
)
async def completions(
    body: CompletionRequest,
    request: Request,
    state: AppStateDep,
    service: ChatServiceDep,
    cache: ResponseCacheDep,
    caller: CallerDep,
) -> Response:
    """Create a legacy text completion (stateless), streamed as SSE when `stream` is true.

    Each prompt is answered by the graph as a chat turn; with `suffix`, as a fill-in-the-
    middle request (see `server.chat.completions`).
    """
    planned = await legacy.plan(
        body,
        service,
        cache,
        request.headers,
        caller_id=caller.key_id,
        settings=state.settings,
    )
    headers = legacy.cache_headers(planned)
    cid = legacy.completion_id()
    if not body.stream:
        outputs = await until_disconnect(request, legacy.complete_all(service, planned))
        return JSONResponse(legacy.completion(body, planned, outputs, cid=cid), headers=headers)
    async with AsyncExitStack() as held:
        events = legacy.open_stream(service, planned[0])
        held.push_async_callback(events.aclose)
        # Wait for the first event so that a failure before any token is a proper HTTP error.
        first = await until_disconnect(request, events.next())
        run_held = held.pop_all()
        stream = legacy.sse_stream(
            body, service, planned, (events, first), run_held=run_held, cid=cid
        )
        return ClosingStreamingResponse(
            stream,
            on_close=run_held,
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )


def _model_card(alias: str, created: int, providers: ProviderCatalogue) -> dict[str, Any]:
    first = providers.resolve(alias)[0]
    return {
        "id": alias,
        "object": "model",
        "created": created,
        "owned_by": first.endpoint,
        "context_window": providers.context_window(first),
    }


@router.get("/models", response_model=ModelList, responses=MODEL_LIST_RESPONSES)
async def list_models(state: AppStateDep) -> dict[str, Any]:
    """The model aliases clients can put in `model`."""
    created, providers = now(), state.deps.providers
    return {
        "object": "list",
        "data": [_model_card(a, created, providers) for a in providers.alias_names()],
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
    return _model_card(model_id, now(), state.deps.providers)
