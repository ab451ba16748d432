"""A run's work, as the registry runs it: the multitask strategy, the kit, the events, the end.

`start_run` creates the run in the registry (`AppState.runs`), emits its first event
(`metadata`), and starts its work in a task the registry owns; the request that started it
waits (`RunHandle.settled`) until the run has opened under its thread's lock, was queued
behind another run of the thread, or was refused, so that a 409 (`thread_busy` with
`multitask_strategy: reject`), a 404 for a checkpoint that is gone, and every other refusal
of the kit are answered before the first byte.

The work, in order:

1. the multitask strategy: `enqueue` waits for the thread's earlier runs; `interrupt` cancels
   them (what they finished stays); `rollback` cancels them and restores the thread's head as
   it was when they started (`TurnKit.rewind`); `reject` leaves the answer to the kit's lock;
2. `TurnKit.open`: the thread's lock, the run prepared (`direct`);
3. the graph's stream (`Turn.chunks`), each part turned into LangGraph's events
   (`server.graph_api.run_wire`) and emitted on the handle;
4. the end: the run's status (`success`, `error`, `interrupted` when cancelled), its last
   values (with `__interrupt__` for a pause), the thread's status (`idle`; `interrupted` for
   a pause or a cancelled run, `idle` again when it was rolled back; `error`), and an
   `error` event for a failure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio

from graph.errors import AgentError
from server.graph_api.run_plan import RunPlan
from server.graph_api.run_wire import WireEvents, graph_modes
from server.graph_api.wire import jsonable
from server.refusals import Refused
from server.stores.graph_threads import ThreadStatus
from server.turns.chunks import ChunksDone
from server.turns.registry import CancelAction, RunHandle
from server.turns.rewind import rewind, thread_head
from server.turns.threads import ThreadRef
from server.wiring.state import AppState

__all__ = ["cancel_run", "start_run"]

logger = logging.getLogger(__name__)


async def start_run(
    state: AppState,
    plan: RunPlan,
    *,
    strategy: str,
    kwargs: dict[str, Any],
    named: ThreadRef | None = None,
) -> RunHandle:
    """Create and start the run; returned once it has settled (see the module docstring).

    `named` is the thread a stateless run is known by (a stateless background run, which
    the client reads as `/threads/{thread_id}/runs/{run_id}`): it names the run only, the
    run itself stores nothing.

    Raises:
        Refused: The kit refused to open it (the run is forgotten then).
    """
    thread = plan.thread or named
    handle = state.runs.create(
        key_id=plan.turn.caller.key_id,
        thread_id=thread.client_id if thread is not None else None,
        stored_id=thread.stored_id if thread is not None else None,
        assistant_id=plan.assistant.assistant_id,
        metadata=dict(plan.turn.config.get("metadata") or {}) if plan.turn.config else {},
        multitask_strategy=strategy,
        kwargs=kwargs,
    )
    handle.emit("metadata", {"run_id": handle.run_id, "attempt": 1})

    async def work(run: RunHandle) -> None:
        await _execute(state, plan, run, strategy)

    state.runs.start(handle, work)
    try:
        await handle.settled()
    except Refused:
        state.runs.forget(handle)
        raise
    return handle


async def cancel_run(state: AppState, handle: RunHandle, action: CancelAction) -> None:
    """Cancel a run and wait until it has stopped.

    `rollback` also restores the thread's head as it was when the run started, and forgets
    the run (as LangGraph Server deletes it).
    """
    was_opened = handle.opened and handle.active
    await handle.cancel(action)
    if action != "rollback":
        return
    state.runs.forget(handle)
    if was_opened and handle.stored_id is not None:
        thread = ThreadRef(handle.thread_id or "", handle.stored_id)
        await rewind(state.turns, thread, handle.start_checkpoint)


async def _make_way(state: AppState, handle: RunHandle, strategy: str) -> None:
    """The multitask strategy, before the run opens (see the module docstring)."""
    if handle.stored_id is None or strategy == "reject":
        return
    if strategy == "enqueue":
        await state.runs.wait_turn(handle)
        return
    action: CancelAction = "rollback" if strategy == "rollback" else "interrupt"
    for other in state.runs.of_thread(handle.key_id, handle.stored_id):
        if other is not handle and other.active and other.created_at <= handle.created_at:
            await cancel_run(state, other, action)


async def _execute(state: AppState, plan: RunPlan, handle: RunHandle, strategy: str) -> None:
    """The run's work (see the module docstring)."""
    kit, thread = state.turns, plan.thread
    wire = WireEvents(plan.modes)
    done = ChunksDone()
    status: ThreadStatus = "idle"
    error: str | None = None
    try:
        await _make_way(state, handle, strategy)
        async with kit.open(plan.turn) as turn:
            handle.start_checkpoint = await thread_head(kit, thread) if thread else None
            handle.opened = True
            handle.set_status("running")
            handle.settle()
            if thread is not None:
                await state.graph_threads.set_status(thread.stored_id, "busy")
            async for item in turn.chunks(graph_modes(plan.modes), subgraphs=plan.subgraphs):
                if isinstance(item, ChunksDone):
                    done = item
                    continue
                for name, data in wire.events(item):
                    handle.emit(name, data)
        result: dict[str, Any] = jsonable(done.values)
        if done.interrupted:
            result["__interrupt__"] = jsonable(list(done.interrupts))
            status = "interrupted"
        handle.result = result
        handle.end("success")
    except Refused as refused:
        if not handle.opened:
            if handle.answered:  # queued, its request answered: the refusal is an event
                _fail(handle, refused.code, refused.message)
                return
            handle.settle(refused)
            handle.end("error")
            return  # never opened: the thread was not this run's
        status, error = "error", refused.message
        _fail(handle, refused.code, refused.message)
    except AgentError as failure:
        status, error = "error", failure.message
        _fail(handle, type(failure).__name__, failure.message)
    except asyncio.CancelledError:
        # LangGraph Server's word for a thread whose run was stopped; a rollback undoes it.
        status = "idle" if handle.cancel_action == "rollback" else "interrupted"
        handle.end("interrupted")
        raise
    except Exception as failure:
        logger.error("LangGraph API run %s failed", handle.run_id, exc_info=failure)
        status, error = "error", str(failure) or type(failure).__name__
        _fail(handle, type(failure).__name__, error)
    finally:
        if thread is not None and handle.opened:
            with anyio.CancelScope(shield=True):
                await state.graph_threads.set_status(thread.stored_id, status, error)


def _fail(handle: RunHandle, name: str, message: str) -> None:
    """End the run with an `error` event."""
    handle.error = (name, message)
    handle.emit("error", {"error": name, "message": message})
    handle.end("error")
