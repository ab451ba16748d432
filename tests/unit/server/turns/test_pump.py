"""The event pump: a run's generator advanced by a task of its own, handed over in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TypeVar

import pytest

from server.turns.pump import EventPump

T = TypeVar("T")


async def next_of(pump: EventPump[T]) -> T:
    """The pump's next event, or a failure instead of a hang."""
    return await asyncio.wait_for(pump.next(), timeout=5)


async def counted(
    log: list[str], n: int, *, then: Exception | None = None
) -> AsyncGenerator[int, None]:
    try:
        for i in range(n):
            yield i
        if then is not None:
            raise then
        await asyncio.sleep(0.01)  # work after the last event (the last checkpoint)
        log.append("ended")
    finally:
        log.append("closed")


async def test_events_come_in_order_then_the_end() -> None:
    log: list[str] = []
    pump = EventPump(counted(log, 3))
    assert [await next_of(pump), await next_of(pump), await next_of(pump)] == [0, 1, 2]
    with pytest.raises(StopAsyncIteration):
        await next_of(pump)
    assert log == ["ended", "closed"]


async def test_what_the_generator_raises_is_raised_by_next_after_its_events() -> None:
    log: list[str] = []
    pump = EventPump(counted(log, 1, then=ValueError("provider down")))
    assert await next_of(pump) == 0
    with pytest.raises(ValueError, match="provider down"):
        await next_of(pump)
    assert log == ["closed"]
    await pump.join()  # the failure went to the consumer, not into the task


async def test_join_waits_for_the_generator_to_finish_after_its_last_event() -> None:
    log: list[str] = []
    pump = EventPump(counted(log, 1))
    assert await next_of(pump) == 0
    assert "ended" not in log
    await pump.join()
    assert log == ["ended", "closed"]


async def test_aclose_stops_a_generator_that_is_waiting_and_runs_its_cleanup() -> None:
    log: list[str] = []
    started = asyncio.Event()

    async def stuck() -> AsyncGenerator[int, None]:
        try:
            yield 1
            started.set()
            await asyncio.Event().wait()  # a provider that never answers
            yield 2
        finally:
            await asyncio.sleep(0.01)  # closing the provider's connection takes a moment
            log.append("cancelled")

    pump = EventPump(stuck())
    assert await next_of(pump) == 1
    await started.wait()
    await pump.aclose()
    assert log == ["cancelled"]  # stopped, not only asked to stop


async def test_aclose_after_the_end_is_harmless() -> None:
    log: list[str] = []
    pump = EventPump(counted(log, 0))
    with pytest.raises(StopAsyncIteration):
        await next_of(pump)
    await pump.aclose()
    assert log == ["ended", "closed"]


async def test_the_generator_runs_in_the_pump_s_task_not_the_consumer_s() -> None:
    tasks: list[asyncio.Task[object] | None] = []

    async def where() -> AsyncGenerator[int, None]:
        tasks.append(asyncio.current_task())
        yield 1

    pump = EventPump(where())
    await next_of(pump)
    assert tasks[0] is not None
    assert tasks[0] is not asyncio.current_task()
    await pump.join()
