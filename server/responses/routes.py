"""`/v1/responses` routes: HTTP only. Validate, pick JSON or SSE, leave the work to the service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from graph.errors import ErrorCode
from server.errors import OpenAIHTTPError
from server.responses.options import not_found
from server.responses.protocol import CreateResponseRequest
from server.responses.service import DOOR, ResponsesService, response_id
from server.responses.streaming import response_events
from server.responses.wire import (
    CREATE_RESPONSES,
    STORED_RESPONSES,
    DeletedResponse,
    ResponseItemList,
    ResponseObject,
)
from server.turns.disconnect import until_disconnect
from server.turns.http import stream_turn
from server.wiring.deps import (
    AppStateDep,
    CallerDep,
    ResponseStoreDep,
    TurnKitDep,
    authenticate,
)

router = APIRouter(prefix="/v1", tags=["responses"], dependencies=[Depends(authenticate)])


async def responses_service(
    state: AppStateDep, caller: CallerDep, store: ResponseStoreDep
) -> ResponsesService:
    """The door's service over the turn kit (built per request: it only holds references)."""
    return ResponsesService(
        kit=state.turns, providers=state.deps.providers, store=store, caller=caller
    )


ResponsesServiceDep = Annotated[ResponsesService, Depends(responses_service)]


@router.post("/responses", response_model=None, responses=CREATE_RESPONSES)
async def create_response(
    body: CreateResponseRequest,
    request: Request,
    caller: CallerDep,
    kit: TurnKitDep,
    service: ResponsesServiceDep,
) -> Response:
    """Create a response, streamed as OpenAI's Responses events when `stream` is true."""
    await kit.admit(request, caller, door=DOOR, messages=len(body.items), param="input")
    service.validate(body)
    body = await service.resolve(body)
    previous = await service.previous(body)
    rid = response_id()
    planned = await service.plan(body, rid, previous, service.thread_for(body, previous, rid))
    headers = dict(planned.thread.header) if planned.thread else {}
    async with kit.open(planned.turn) as turn:
        if not body.stream:
            result = await until_disconnect(request, turn.complete())
            response = service.response(planned, status="completed", result=result)
            await service.record(planned, response, result)
            return JSONResponse(response.model_dump(mode="json"), headers=headers)
        return await stream_turn(
            request,
            turn,
            lambda feed: response_events(feed, service=service, planned=planned),
            headers=headers,
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
