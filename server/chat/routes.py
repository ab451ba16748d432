"""`/v1` routes: a translation of OpenAI's chat wire to turns and back.

The request becomes a turn (`server.chat.service`); the turn's result or events become
OpenAI's JSON or SSE; the turn kit (`server.turns`) does the rest.

`/v1/completions` (the legacy text completions) is translated onto turns the same way by
`server.chat.completions`.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from graph.errors import ErrorCode
from nodes.providers.catalogue import ProviderCatalogue
from server.chat import completions as legacy
from server.chat import service
from server.chat.adapter import completion, completion_id, now
from server.chat.cached import lookup
from server.chat.protocol import ChatCompletionRequest, CompletionRequest
from server.chat.service import DOOR
from server.chat.streaming import sse_stream
from server.chat.wire import (
    CHAT_COMPLETION_RESPONSES,
    COMPLETION_RESPONSES,
    MODEL_CARD_RESPONSES,
    MODEL_LIST_RESPONSES,
    ModelCard,
    ModelList,
)
from server.errors import OpenAIHTTPError
from server.turns.disconnect import until_disconnect
from server.turns.http import stream_events, stream_turn
from server.turns.threads import thread_of
from server.wiring.deps import (
    AppStateDep,
    CallerDep,
    ResponseCacheDep,
    TurnKitDep,
    app_state_of,
    authenticate,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(authenticate)])

RETRY_COUNT_HEADER = "x-stainless-retry-count"


def is_retry(request: Request) -> bool:
    """The openai SDK numbers its automatic retries; a retried POST must not run twice."""
    count = request.headers.get(RETRY_COUNT_HEADER, "0")
    return count.isdigit() and int(count) > 0


@router.post("/chat/completions", response_model=None, responses=CHAT_COMPLETION_RESPONSES)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    kit: TurnKitDep,
    cache: ResponseCacheDep,
    caller: CallerDep,
) -> Response:
    """Create a chat completion, streamed as SSE when `stream` is true."""
    await kit.admit(request, caller, door=DOOR, messages=len(body.messages))
    service.validate(body)
    kit.providers.resolve(body.model)
    thread = thread_of(caller.key_id, request.headers, metadata=body.metadata)
    headers = dict(thread.header) if thread else {}
    turn_request = service.turn_request(
        body,
        caller,
        thread,
        retry=is_retry(request),
        idempotency_key=request.headers.get("idempotency-key") or None,
    )
    # Response cache (server/stores/cache.py): a hit replaces the run; a miss stores its answer.
    knowledge = app_state_of(request).deps.knowledge
    cached = await lookup(
        cache,
        body,
        request.headers,
        stateful=turn_request.thread is not None,
        caller_id=caller.key_id,
        own_data=knowledge is not None and knowledge.has_documents([caller.key_id]),
    )
    headers.update(cached.headers)
    cid = completion_id()
    async with kit.open(turn_request) as turn:
        if not body.stream:
            result = await until_disconnect(request, cached.complete(turn.complete))
            payload = completion(
                cid=cid,
                model=body.model,
                created=now(),
                text=result.text,
                finish_reason=result.finish_reason,
                usage=result.usage,
                tool_calls=result.tool_calls,
                reasoning=result.reasoning,
            )
            return JSONResponse(payload, headers=headers)
        return await stream_turn(
            request,
            turn,
            partial(sse_stream, cid=cid, model=body.model, include_usage=body.include_usage),
            headers=headers,
            events=cached.stream(turn.stream),
        )


@router.post("/completions", response_model=None, responses=COMPLETION_RESPONSES)
async def completions(
    body: CompletionRequest,
    request: Request,
    kit: TurnKitDep,
    cache: ResponseCacheDep,
    caller: CallerDep,
) -> Response:
    """Create a legacy text completion (stateless), streamed as SSE when `stream` is true.

    Each prompt is answered by the graph as a chat turn; with `suffix`, as a fill-in-the-
    middle request (see `server.chat.completions`).
    """
    runs = len(body.prompts) * body.choices_per_prompt
    await kit.admit(request, caller, door=legacy.DOOR, messages=runs, param="prompt")
    planned = await legacy.plan(body, kit, cache, request.headers, caller=caller)
    headers = legacy.cache_headers(planned)
    cid = legacy.completion_id()
    if not body.stream:
        results = await until_disconnect(request, legacy.complete_all(kit, planned))
        return JSONResponse(legacy.completion(body, planned, results, cid=cid), headers=headers)
    return await stream_events(
        request,
        legacy.stream_all(kit, planned),
        partial(legacy.sse_stream, body, cid=cid),
        headers=headers,
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
