"""Cancel work when the client goes away (pure ASGI: the `http.disconnect` message)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientGone(Exception):  # noqa: N818 - a condition, not a failure
    """The client disconnected before its answer was ready; the work was cancelled."""


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        continue


async def cancel_until_stopped(task: asyncio.Future[Any], *, every: float = 0.5) -> None:
    """Cancel `task` and wait until it has stopped, cancelling again while it runs on.

    One `cancel()` is not always enough: a library may lose it in a race (the request is
    delivered while an inner await completes, and the work carries on to the end, with the
    provider call the cancellation was meant to stop). Repeating it lands on a later await.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.cancelled():
        task.exception()  # retrieved: a failure after the client left is not "never retrieved"


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client disconnects first.

    Raises:
        ClientGone: The client left; `work` was cancelled (and has finished cancelling).
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        await cancel_until_stopped(task)
    if task.cancelled():
        raise ClientGone
    return task.result()
