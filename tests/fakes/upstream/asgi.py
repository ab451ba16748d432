"""Raw ASGI plumbing: a response driven by hand, on a channel that notices the client leaving."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Self

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send


class RawResponse(Response):
    """A response whose ASGI exchange is driven by ``run(receive, send)``."""

    def __init__(self, run: Callable[[Receive, Send], Awaitable[None]]) -> None:
        super().__init__()
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._run(receive, send)


class Channel:
    """One request's ASGI channel, watching for the client going away.

    A background task consumes ``receive()`` until ``http.disconnect`` (uvicorn
    reports it as soon as the peer closes the connection), so long pauses can be
    cut short when the client leaves or when the fake upstream shuts down.
    """

    def __init__(self, receive: Receive, send: Send, closing: asyncio.Event) -> None:
        self._receive = receive
        self._send = send
        self._closing = closing
        self.disconnected = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            message: Message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Self]:
        self._watcher = asyncio.create_task(self._watch())
        try:
            yield self
        finally:
            self._watcher.cancel()
            await asyncio.wait([self._watcher])

    @property
    def gone(self) -> bool:
        """Whether the client disconnected or the server is shutting down."""
        return self.disconnected.is_set() or self._closing.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, waking early when the client leaves or the server closes."""
        if seconds <= 0 or self.gone:
            await asyncio.sleep(0)
            return
        waiters = [
            asyncio.create_task(self.disconnected.wait()),
            asyncio.create_task(self._closing.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.wait(waiters)

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, *, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        await self.start(status, {**headers, "content-length": str(len(data))})
        await self.body(data, more=False)

    async def abort(self) -> None:
        """Drop the TCP connection without finishing the response.

        uvicorn's h11 protocol exposes the transport on the object whose bound
        method is ``receive``; closing it makes the client see the connection end
        mid-response (or before any response). Without that, raise so uvicorn
        drops the connection itself (it logs the exception).
        """
        transport = getattr(getattr(self._receive, "__self__", None), "transport", None)
        close = getattr(transport, "close", None)  # asyncio's or uvloop's transport
        if not callable(close):
            raise _ConnectionAbortError("fake upstream dropped the connection")
        close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.disconnected.wait(), timeout=2.0)


class _ConnectionAbortError(RuntimeError):
    """Raised inside the ASGI app to make the server drop the connection."""
