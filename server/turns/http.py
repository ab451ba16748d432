"""The streaming choreography of every HTTP door that streams a turn, in one place.

1. The run starts, and its first event is awaited before any header is sent: a failure
   before the first token (a refusal, every provider down) is a proper HTTP error, and a
   client that leaves meanwhile cancels the run (`until_disconnect`).
2. The door frames the events in its own wire (`frames`); the feed it reads from
   (`TurnFeed`) holds back the end of the turn until the run's generator has returned (its
   checkpoints are written) and what the turn held (the thread's lock) is released. Only
   then does the door see `TurnDone` and write its last bytes: a client may send its next
   turn the instant it reads the end, and a `kill -9` right after must not lose this one.
3. A client that leaves mid-stream, or before the first byte, cancels the run and releases
   the thread (`ClosingStreamingResponse`), however the response ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Generic, TypeVar

import anyio
from starlette.requests import Request

from server.turns.disconnect import ClosingStreamingResponse, until_disconnect
from server.turns.events import StreamEvent, TurnDone
from server.turns.pump import EventPump
from server.turns.turn import Turn

__all__ = ["TurnFeed", "stream_events", "stream_turn"]

E = TypeVar("E")


class TurnFeed(Generic[E]):
    """A streaming turn's events for the door to frame.

    A turn's end (`TurnDone`), or the end of the events, is handed over only once the run has
    ended and what it held is released (see the module docstring).
    """

    def __init__(self, first: E, pump: EventPump[E], held: AsyncExitStack) -> None:
        self._first: E | None = first
        self._pump = pump
        self._held = held
        self._ended = False

    def __aiter__(self) -> TurnFeed[E]:
        return self

    async def __anext__(self) -> E:
        """The next event; the turn's end only once what the run held is released.

        A plain iterator, not a generator: every event of every stream passes here.
        """
        event = self._first
        if event is None:
            if self._ended:
                raise StopAsyncIteration
            try:
                event = await self._pump.next()
            except StopAsyncIteration:
                await self._end()
                raise
        else:
            self._first = None
        if isinstance(event, TurnDone):
            await self._end()
        return event

    async def _end(self) -> None:
        self._ended = True
        await self._pump.join()  # the run's generator has returned: its checkpoints are written
        with anyio.CancelScope(shield=True):  # half a release would leave the thread busy
            await self._held.aclose()


async def stream_events(
    request: Request,
    events: AsyncGenerator[E, None],
    frames: Callable[[TurnFeed[E]], AsyncIterator[str]],
    *,
    held: AsyncExitStack | None = None,
    headers: Mapping[str, str] | None = None,
    media_type: str = "text/event-stream",
) -> ClosingStreamingResponse:
    """The streamed response of `events`, with the choreography of the module docstring.

    Args:
        request: The HTTP request (its disconnect cancels the run).
        events: What the run yields (it runs in a task of its own, `EventPump`).
        frames: The door's framing of the events into its wire (an error after the first
            byte is the door's to report in-band).
        held: What the run holds (a thread's lock): released once the run has ended, before
            the door sees its end, and however the response ends.
        headers: The response's headers (`cache-control: no-cache` is added).
        media_type: The response's media type.

    Raises:
        Whatever the run raises before its first event; `ClientGone` when the client left
        before it.
    """
    stack = held if held is not None else AsyncExitStack()
    pump = EventPump(events)
    stack.push_async_callback(pump.aclose)
    try:
        first = await until_disconnect(request, pump.next())
    except BaseException:
        if held is None:  # nobody else releases what the run holds
            with anyio.CancelScope(shield=True):
                await stack.aclose()
        raise
    owned = stack.pop_all()
    return ClosingStreamingResponse(
        frames(TurnFeed(first, pump, owned)),
        on_close=owned,
        media_type=media_type,
        headers={**(headers or {}), "cache-control": "no-cache"},
    )


async def stream_turn(
    request: Request,
    turn: Turn,
    frames: Callable[[TurnFeed[StreamEvent]], AsyncIterator[str]],
    *,
    headers: Mapping[str, str] | None = None,
    events: AsyncGenerator[StreamEvent, None] | None = None,
) -> ClosingStreamingResponse:
    """The streamed response of an opened turn (call it inside `TurnKit.open`).

    What the turn holds passes to the response. `events`: the turn's stream wrapped (by a
    cache, say) to stream instead of `turn.stream()`.
    """
    return await stream_events(
        request,
        events if events is not None else turn.stream(),
        frames,
        held=turn.held,
        headers=headers,
    )
