"""The run registry: a run's task, its numbered events for any reader, cancel, a thread's order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graph.errors import ErrorCode
from server.refusals import Refused
from server.turns.registry import LocalRunRegistry, RunHandle


def create(registry: LocalRunRegistry, stored_id: str | None = "t") -> RunHandle:
    return registry.create(
        key_id="k",
        thread_id=stored_id,
        stored_id=stored_id,
        assistant_id="a",
        metadata={},
        multitask_strategy="reject",
        kwargs={},
    )


async def test_readers_get_every_event_in_order_from_where_they_ask() -> None:
    registry = LocalRunRegistry()
    handle = create(registry)
    go = asyncio.Event()

    async def work(run: RunHandle) -> None:
        run.emit("a", 0)
        run.settle()
        await go.wait()
        run.emit("b", 1)
        run.emit("c", 2)
        run.end("success")

    registry.start(handle, work)
    await handle.settled()
    first = asyncio.create_task(_collect(handle, -1))
    later = asyncio.create_task(_collect(handle, 0))
    go.set()
    assert await first == [(0, "a"), (1, "b"), (2, "c")]
    assert await later == [(1, "b"), (2, "c")]
    assert await _collect(handle, 1) == [(2, "c")]  # after the end too
    assert handle.status == "success"


async def _collect(handle: RunHandle, after: int) -> list[tuple[int, Any]]:
    return [(event.seq, event.event) async for event in handle.events(after)]


async def test_a_refusal_before_opening_reaches_the_request_and_cancel_stops_the_run() -> None:
    registry = LocalRunRegistry()
    refused = create(registry)

    async def refuse(run: RunHandle) -> None:
        run.settle(Refused(ErrorCode.THREAD_BUSY, "busy"))
        run.end("error")

    registry.start(refused, refuse)
    with pytest.raises(Refused):
        await refused.settled()

    running = create(registry)

    async def forever(run: RunHandle) -> None:
        run.settle()
        await asyncio.Event().wait()

    registry.start(running, forever)
    await running.settled()
    await running.cancel("rollback")
    assert (running.status, running.cancel_action) == ("interrupted", "rollback")


async def test_a_run_waits_for_the_earlier_runs_of_its_thread_only() -> None:
    registry = LocalRunRegistry()
    first, other_thread = create(registry), create(registry, "u")
    second = create(registry)
    release = asyncio.Event()
    order: list[str] = []

    async def hold(run: RunHandle) -> None:
        run.settle()
        await release.wait()
        order.append(run.run_id)
        run.end("success")

    async def queued(run: RunHandle) -> None:
        await registry.wait_turn(run)
        order.append(run.run_id)
        run.end("success")

    registry.start(first, hold)
    registry.start(other_thread, queued)
    registry.start(second, queued)
    await second.settled()  # queued: its request answers already
    await other_thread.done()
    assert second.status == "pending"
    release.set()
    await second.done()
    assert order == [other_thread.run_id, first.run_id, second.run_id]
    assert [h.run_id for h in registry.of_thread("k", "t")] == [second.run_id, first.run_id]
    assert registry.get("someone else", first.run_id) is None


async def test_events_of_runs_ended_long_ago_are_dropped_and_records_bounded() -> None:
    registry = LocalRunRegistry(keep_seconds=0.0, max_runs=2)
    handles = [create(registry) for _ in range(2)]
    for handle in handles:

        async def work(run: RunHandle) -> None:
            run.emit("x", None)
            run.end("success")

        registry.start(handle, work)
        await handle.done()
    create(registry)  # prunes
    assert await _collect(handles[0], -1) == []
    assert registry.get("k", handles[0].run_id) is None
    assert registry.get("k", handles[1].run_id) is not None
