"""Runs a run's event stream in a task of its own, so the route can race it with a disconnect.

An async generator must be advanced by one task only (LangGraph's stream holds task-bound
state), while the route wants to wait for the first event *or* the client leaving. The pump
iterates the generator in its own task and hands events over through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Generic, TypeVar

from server.turns.disconnect import cancel_until_stopped

T = TypeVar("T")

_END = object()


class EventPump(Generic[T]):
    """Iterates `events` in a background task; `next()` returns them in order."""

    def __init__(self, events: AsyncGenerator[T, None]) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(events))

    async def _run(self, events: AsyncGenerator[T, None]) -> None:
        async with contextlib.aclosing(events):
            try:
                async for event in events:
                    await self._queue.put(event)
            except Exception as error:  # noqa: BLE001 - handed to the consumer, raised there
                await self._queue.put(_Failure(error))
                return
        await self._queue.put(_END)

    async def next(self) -> T:
        """The next event.

        Raises:
            StopAsyncIteration: The stream has ended.
            Exception: Whatever the stream raised, re-raised here.
        """
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            raise item.error
        return item  # type: ignore[return-value]

    async def join(self) -> None:
        """Wait until the stream has ended by itself (after its last event has been taken)."""
        await self._task

    async def aclose(self) -> None:
        """Stop the stream (cancelling the run behind it) and wait until it has stopped."""
        await cancel_until_stopped(self._task)


class _Failure:
    def __init__(self, error: Exception) -> None:
        self.error = error
