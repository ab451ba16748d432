"""Cancel work when the client goes away (pure ASGI: the `http.disconnect` message)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from server.refusals import ClientGone

__all__ = ["ClientGone", "ClosingStreamingResponse", "cancel_until_stopped", "until_disconnect"]

T = TypeVar("T")


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


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that runs `on_close` however it ends (even if never started).

    A client that leaves cancels the stream; one that leaves before the first byte never
    starts it. Either way the run must be stopped and the thread lock released.
    """

    def __init__(
        self, content: AsyncIterator[str], *, on_close: AsyncExitStack, **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream, then close what the run held, shielded from the client's cancellation."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close.aclose()
