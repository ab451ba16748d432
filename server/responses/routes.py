"""`/v1/responses` routes: HTTP only. Validate, pick JSON or SSE, leave the work to the service."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from graph.errors import ErrorCode
from server.deps import (
    AppStateDep,
    CallerDep,
    ResponseStoreDep,
    authenticate,
    rate_limit,
    within_budget,
)
from server.errors import OpenAIHTTPError
from server.responses.options import not_found
from server.responses.protocol import CreateResponseRequest
from server.responses.service import ResponsesService, response_id
from server.responses.streaming import response_events
from server.responses.wire import (
    CREATE_RESPONSES,
    STORED_RESPONSES,
    DeletedResponse,
    ResponseItemList,
    ResponseObject,
)
from server.turns.disconnect import ClosingStreamingResponse, until_disconnect
from server.turns.pump import EventPump

router = APIRouter(prefix="/v1", tags=["responses"], dependencies=[Depends(authenticate)])


async def responses_service(
    state: AppStateDep, caller: CallerDep, store: ResponseStoreDep
) -> ResponsesService:
    """The door's service over the app's graphs (built per request: it only holds references)."""
    return ResponsesService(
        graph=state.graph,
        stateless_graph=state.stateless_graph,
        providers=state.deps.providers,
        settings=state.settings,
        store=store,
        caller=caller.key_id,
        images=state.deps.images,
    )


ResponsesServiceDep = Annotated[ResponsesService, Depends(responses_service)]


@router.post(
    "/responses",
    response_model=None,
    responses=CREATE_RESPONSES,
    dependencies=[Depends(rate_limit), Depends(within_budget)],
)
async def create_response(
    body: CreateResponseRequest,
    request: Request,
    state: AppStateDep,
    service: ResponsesServiceDep,
) -> Response:
    """Create a response, streamed as OpenAI's Responses events when `stream` is true."""
    service.validate(body)
    body = await service.resolve(body)
    previous = await service.previous(body)
    rid = response_id()
    thread = service.thread_for(body, previous, rid)
    headers = dict(thread.header) if thread else {}
    async with AsyncExitStack() as held:
        if thread:
            await held.enter_async_context(state.locks.hold(thread.stored_id))
        turn = await service.prepare(body, rid, previous, thread)
        if not body.stream:
            output = await until_disconnect(request, service.complete(turn))
            response = service.response(turn, status="completed", output=output)
            await service.record(turn, response)
            return JSONResponse(response.model_dump(mode="json"), headers=headers)
        events = EventPump(service.stream(turn))
        held.push_async_callback(events.aclose)
        # Wait for the first event so that a failure before any token is a proper HTTP error.
        first = await until_disconnect(request, events.next())
        run_held = held.pop_all()
        stream = response_events(first, events, run_held=run_held, service=service, turn=turn)
        return ClosingStreamingResponse(
            stream,
            on_close=run_held,
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )


@router.get("/responses/{response_id}", response_model=ResponseObject, responses=STORED_RESPONSES)
async def retrieve_response(
    response_id: str, store: ResponseStoreDep, caller: CallerDep
) -> dict[str, Any]:
    """A stored response, as it was returned."""
    record = await store.get(response_id, caller.key_id)
    if record is None:
        raise not_found(response_id)
    return record.response


@router.delete(
    "/responses/{response_id}", response_model=DeletedResponse, responses=STORED_RESPONSES
)
async def delete_response(
    response_id: str, store: ResponseStoreDep, caller: CallerDep
) -> DeletedResponse:
    """Forget a stored response (its thread's checkpoints stay: `server.stores.response_store`)."""
    if not await store.delete(response_id, caller.key_id):
        raise not_found(response_id)
    return DeletedResponse(id=response_id)


@router.get(
    "/responses/{response_id}/input_items",
    response_model=ResponseItemList,
    responses=STORED_RESPONSES,
)
async def list_input_items(
    response_id: str,
    store: ResponseStoreDep,
    caller: CallerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> ResponseItemList:
    """The input items of a stored response, newest first by default, a page at a time."""
    record = await store.get(response_id, caller.key_id)
    if record is None:
        raise not_found(response_id)
    items = list(record.input_items)
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise OpenAIHTTPError(
                400,
                f"No input item with id '{after}' in response '{response_id}'.",
                code=ErrorCode.INVALID_REQUEST,
                param="after",
            )
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return ResponseItemList(
        data=page,
        first_id=page[0]["id"] if page else None,
        last_id=page[-1]["id"] if page else None,
        has_more=len(items) > limit,
    )
