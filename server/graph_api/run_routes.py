"""A thread's runs after they started: list, get, join, join the stream, cancel, delete.

* `GET /threads/{thread_id}/runs`: the thread's runs, newest first (`limit`, `offset`,
  `status`).
* `GET /threads/{thread_id}/runs/{run_id}`: the `Run` object.
* `GET /threads/{thread_id}/runs/{run_id}/join`: wait for its end; its last values.
* `GET /threads/{thread_id}/runs/{run_id}/stream`: its events from now on (none once it has
  ended), or, with `Last-Event-ID`, those that followed that one (a client that reconnects).
* `POST /threads/{thread_id}/runs/{run_id}/cancel` (`wait`, `action=interrupt|rollback`):
  stop it; `rollback` also restores the thread's head as it was when the run started.
* `DELETE /threads/{thread_id}/runs/{run_id}`: forget it (cancelled first when running).

A run is found among the caller's own runs of that thread: any other id is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request, Response
from fastapi.responses import JSONResponse

from server.graph_api.door import door_router, not_found
from server.graph_api.run_exec import cancel_run
from server.graph_api.run_schemas import run_object
from server.graph_api.runs import outcome_body, run_location, stream_response
from server.graph_api.wire import jsonable
from server.turns.disconnect import until_disconnect
from server.turns.registry import RunHandle, RunStatus
from server.wiring.deps import AppStateDep, CallerDep
from server.wiring.state import AppState

__all__ = ["router"]

router = door_router(tags=["LangGraph API: runs"])


def _run(state: AppState, caller: Any, thread_id: str, run_id: str) -> RunHandle:
    """The caller's run of that thread.

    Raises:
        Refused: 404 for any other id.
    """
    thread = state.turns.thread(caller, thread_id)
    handle = state.runs.get(caller.key_id, run_id)
    if handle is None or handle.stored_id != thread.stored_id:
        raise not_found("run", run_id)
    return handle


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


@router.get("/threads/{thread_id}/runs", summary="A thread's runs")
async def list_runs(
    thread_id: str,
    state: AppStateDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=0, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    thread = state.turns.thread(caller, thread_id)
    runs = state.runs.of_thread(caller.key_id, thread.stored_id)
    if status is not None:
        runs = [run for run in runs if run.status == status]
    return [run_object(run) for run in runs[offset : offset + limit]]


@router.get("/threads/{thread_id}/runs/{run_id}", summary="A run")
async def get_run(
    thread_id: str, run_id: str, state: AppStateDep, caller: CallerDep
) -> dict[str, Any]:
    """The `Run` object."""
    return run_object(_run(state, caller, thread_id, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join", summary="Wait for a run")
async def join_run(
    thread_id: str, run_id: str, request: Request, state: AppStateDep, caller: CallerDep
) -> Response:
    """Wait until the run has ended; its last values (the thread's, when it kept none)."""
    handle = _run(state, caller, thread_id, run_id)
    await until_disconnect(request, handle.done())
    body = outcome_body(handle)
    if not body and handle.error is None:
        view = await state.turns.read(caller, thread_id)
        body = jsonable(view.values)
    return JSONResponse(body, headers={"content-location": run_location(handle)})


@router.get("/threads/{thread_id}/runs/{run_id}/stream", summary="Join a run's stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    state: AppStateDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header()] = None,
    cancel_on_disconnect: str | None = None,
) -> Response:
    """The run's events from now on (after `Last-Event-ID`, when sent), until it ends.

    As from LangGraph Server, a client that joins without `Last-Event-ID` gets the events
    that follow its joining: none for a run that has ended (an empty stream). With it, the
    events that followed that one (never the first, `metadata`: it went to the request that
    started the run).
    """
    handle = _run(state, caller, thread_id, run_id)
    try:
        after = max(int(last_event_id), 0) if last_event_id else handle.last_seq
    except ValueError:
        after = handle.last_seq
    return stream_response(
        state, handle, after=after, cancel_on_disconnect=_truthy(cancel_on_disconnect)
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", summary="Cancel a run")
async def cancel(
    thread_id: str,
    run_id: str,
    state: AppStateDep,
    caller: CallerDep,
    wait: str | None = None,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Stop the run (see the module docstring); 404 when it is not pending or running."""
    handle = _run(state, caller, thread_id, run_id)
    if not handle.active:
        raise not_found("active run", run_id)
    await cancel_run(state, handle, action)
    if _truthy(wait):
        return JSONResponse(outcome_body(handle))
    return Response(status_code=202)


@router.delete("/threads/{thread_id}/runs/{run_id}", summary="Delete a run", status_code=204)
async def delete_run(
    thread_id: str, run_id: str, state: AppStateDep, caller: CallerDep
) -> Response:
    """Forget the run (cancelled first when it is still going)."""
    handle = _run(state, caller, thread_id, run_id)
    if handle.active:
        await cancel_run(state, handle, "interrupt")
    state.runs.forget(handle)
    return Response(status_code=204)
