"""Starting runs: streamed, in the background, or waited for; on a thread or stateless.

* `POST /threads/{thread_id}/runs/stream` and `POST /runs/stream`: the run's events as they
  come (`text/event-stream`), the first `metadata` with the run's id; the response names the
  run in `Content-Location` (`/threads/{thread_id}/runs/{run_id}`). A client that leaves
  cancels the run (`on_disconnect: cancel`, the default) or leaves it running (`continue`).
* `POST /threads/{thread_id}/runs` and `POST /runs`: the run in the background; the `Run`
  object (a stateless one names a thread id of its own, to read the run by).
* `POST /threads/{thread_id}/runs/wait` and `POST /runs/wait`: the run's last values (with
  `__interrupt__` when it paused, `__error__` when it failed).

Every refusal (the assistant, the thread, the input, the rate limit, the budget,
MAX_MESSAGES, a busy thread with `multitask_strategy: reject`) is answered before the first
byte, in this door's `{detail}` shape.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from server.graph_api.door import door_router
from server.graph_api.run_exec import cancel_run, start_run
from server.graph_api.run_plan import plan_run
from server.graph_api.run_schemas import RunCreate, run_object
from server.graph_api.run_wire import sse
from server.refusals import ClientGone
from server.turns.disconnect import ClosingStreamingResponse, until_disconnect
from server.turns.registry import RunHandle
from server.turns.threads import ThreadRef, thread_header_value
from server.wiring.deps import AppStateDep, CallerDep
from server.wiring.state import AppState

__all__ = ["outcome_body", "router", "run_location", "stream_response"]

router = door_router(tags=["LangGraph API: runs"])

KWARGS = (
    "input",
    "command",
    "config",
    "context",
    "stream_mode",
    "interrupt_before",
    "interrupt_after",
    "checkpoint",
    "checkpoint_id",
)
"""What of the request a `Run` object shows (its `kwargs`)."""


def run_location(handle: RunHandle) -> str:
    """The run's path: `/threads/{thread_id}/runs/{run_id}`, or `/runs/{run_id}` (stateless)."""
    if handle.thread_id is None:
        return f"/runs/{handle.run_id}"
    return f"/threads/{thread_header_value(handle.thread_id)}/runs/{handle.run_id}"


def _kwargs(body: RunCreate) -> dict[str, Any]:
    shown = body.model_dump(mode="json", include=set(KWARGS))
    shown["subgraphs"] = body.stream_subgraphs
    shown["resumable"] = body.stream_resumable
    return shown


def stream_response(
    state: AppState, handle: RunHandle, *, after: int = -1, cancel_on_disconnect: bool
) -> ClosingStreamingResponse:
    """The run's events numbered above `after`, as SSE.

    A client that leaves cancels the run when `cancel_on_disconnect` (a run that has ended
    is left as it is).
    """

    async def frames() -> Any:
        async for event in handle.events(after):
            yield sse(event.seq, event.event, event.data)

    on_close = AsyncExitStack()
    if cancel_on_disconnect:

        async def cancel() -> None:
            if handle.active:
                await cancel_run(state, handle, "interrupt")

        on_close.push_async_callback(cancel)
    location = run_location(handle)
    return ClosingStreamingResponse(
        frames(),
        on_close=on_close,
        media_type="text/event-stream",
        headers={
            "content-location": location,
            "location": f"{location}/stream",
            "cache-control": "no-store",
            "x-accel-buffering": "no",
        },
    )


def outcome_body(handle: RunHandle) -> dict[str, Any]:
    """What waiting for a run answers: its last values, or `__error__` when it failed."""
    if handle.error is not None:
        name, message = handle.error
        return {"__error__": {"error": name, "message": message}}
    return handle.result or {}


async def _start(
    state: AppState,
    request: Request,
    caller: Any,
    body: RunCreate,
    thread_id: str | None,
    *,
    named: ThreadRef | None = None,
) -> RunHandle:
    plan = await plan_run(state, request, caller, body, thread_id)
    strategy = body.multitask_strategy
    return await start_run(state, plan, strategy=strategy, kwargs=_kwargs(body), named=named)


async def _stream(
    state: AppState, request: Request, caller: Any, body: RunCreate, thread_id: str | None
) -> Response:
    handle = await _start(state, request, caller, body, thread_id)
    cancel = (body.on_disconnect or "cancel") == "cancel"
    return stream_response(state, handle, cancel_on_disconnect=cancel)


async def _wait(
    state: AppState, request: Request, caller: Any, body: RunCreate, thread_id: str | None
) -> Response:
    handle = await _start(state, request, caller, body, thread_id)
    try:
        await until_disconnect(request, handle.done())
    except ClientGone:
        if (body.on_disconnect or "cancel") == "cancel" and handle.active:
            await cancel_run(state, handle, "interrupt")
        raise
    location = run_location(handle)
    headers = {"content-location": location, "location": f"{location}/join"}
    return JSONResponse(outcome_body(handle), headers=headers)


@router.post("/threads/{thread_id}/runs/stream", summary="Run on a thread, streamed")
async def stream_thread_run(
    thread_id: str, body: RunCreate, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Start a run on the thread and stream its events (see the module docstring)."""
    return await _stream(state, request, caller, body, thread_id)


@router.post("/runs/stream", summary="Stateless run, streamed")
async def stream_stateless_run(
    body: RunCreate, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Start a run that stores nothing and stream its events."""
    return await _stream(state, request, caller, body, None)


@router.post("/threads/{thread_id}/runs/wait", summary="Run on a thread, waited for")
async def wait_thread_run(
    thread_id: str, body: RunCreate, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Run on the thread to its end; its last values."""
    return await _wait(state, request, caller, body, thread_id)


@router.post("/runs/wait", summary="Stateless run, waited for")
async def wait_stateless_run(
    body: RunCreate, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Run without a thread to its end; its last values."""
    return await _wait(state, request, caller, body, None)


@router.post("/threads/{thread_id}/runs", summary="Run on a thread, in the background")
async def create_thread_run(
    thread_id: str, body: RunCreate, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Start a run on the thread in the background; the `Run` object."""
    handle = await _start(state, request, caller, body, thread_id)
    location = run_location(handle)
    return JSONResponse(run_object(handle), headers={"content-location": location})


@router.post("/runs", summary="Stateless run, in the background")
async def create_stateless_run(
    body: RunCreate, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Start a run that stores nothing in the background; the `Run` object.

    As from LangGraph Server, the run is known by a thread id of its own (a new one): the
    client reads it, joins it or cancels it as `/threads/{thread_id}/runs/{run_id}` while it
    is kept (`RunRegistry`); the thread itself holds nothing, before or after.
    """
    named = state.turns.thread(caller, str(uuid.uuid4()))
    handle = await _start(state, request, caller, body, None, named=named)
    return JSONResponse(run_object(handle), headers={"content-location": f"/runs/{handle.run_id}"})
