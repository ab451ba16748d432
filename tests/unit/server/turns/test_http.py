"""The streaming choreography of `server.turns.http`: the door sees a turn's end only once
the run has returned and what it held (the thread's lock) is released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from starlette.requests import Request
from starlette.types import Message

from server.refusals import ClientGone
from server.stores.locks import ThreadLocks
from server.turns.events import StreamEvent, TextDelta, TurnDone
from server.turns.http import TurnFeed, stream_turn
from server.turns.pump import EventPump
from server.turns.result import TurnResult
from server.turns.threads import ThreadRef
from tests.unit.server.kit import Chat

THREAD = ThreadRef("t-1", "t-1")
ASK = ("user", "What is 6*7?")


def done(text: str) -> TurnDone:
    return TurnDone(
        TurnResult.of({"messages": [HumanMessage("q", id="client-1"), AIMessage(text)]})
    )


async def feed_of(events: AsyncGenerator[StreamEvent, None], held: AsyncExitStack) -> TurnFeed[Any]:
    """The feed a door frames: the run pumped in a task of its own, its first event taken."""
    pump: EventPump[StreamEvent] = EventPump(events)
    return TurnFeed(await pump.next(), pump, held)


async def test_the_end_is_handed_over_after_the_run_returned_and_the_lock_is_free() -> None:
    locks, held, log = ThreadLocks(), AsyncExitStack(), list[str]()
    await held.enter_async_context(locks.hold("t"))
    held.callback(log.append, "released")

    async def run() -> AsyncGenerator[StreamEvent, None]:
        yield TextDelta("4")
        yield TextDelta("2")
        yield done("42")
        for _ in range(3):  # the last checkpoint is written after the last event
            await asyncio.sleep(0)
        log.append("run returned")

    seen = [
        (type(e).__name__, locks.busy("t"), list(log)) async for e in await feed_of(run(), held)
    ]

    assert seen == [
        ("TextDelta", True, []),
        ("TextDelta", True, []),
        ("TurnDone", False, ["run returned", "released"]),
    ]


async def test_events_that_end_without_a_turn_s_end_are_released_before_the_feed_ends() -> None:
    locks, held = ThreadLocks(), AsyncExitStack()
    await held.enter_async_context(locks.hold("t"))

    async def run() -> AsyncGenerator[StreamEvent, None]:
        yield TextDelta("only")

    busy = [locks.busy("t") async for _ in await feed_of(run(), held)]
    assert busy == [True]
    assert not locks.busy("t")


async def test_a_failing_run_leaves_the_release_to_the_response() -> None:
    locks, held = ThreadLocks(), AsyncExitStack()
    await held.enter_async_context(locks.hold("t"))

    async def run() -> AsyncGenerator[StreamEvent, None]:
        yield TextDelta("par")
        raise RuntimeError("provider gone")

    feed = await feed_of(run(), held)
    with pytest.raises(RuntimeError, match="provider gone"):
        async for _ in feed:
            pass
    assert locks.busy("t")  # `ClosingStreamingResponse` releases it however the body ends
    await held.aclose()
    assert not locks.busy("t")


async def test_a_real_turn_s_end_arrives_with_its_thread_free_and_its_answer_stored(
    chat: Chat,
) -> None:
    async with chat.open(THREAD, ASK) as turn:
        feed = await feed_of(turn.stream(), turn.detach())
    assert chat.kit.locks.busy(THREAD.stored_id)  # the stream holds it past the door's block

    async for event in feed:
        if not isinstance(event, TurnDone):
            assert chat.kit.locks.busy(THREAD.stored_id)
            continue
        assert not chat.kit.locks.busy(THREAD.stored_id)
        stored = await chat.messages(THREAD)
        assert stored[-1].content == event.result.text == "6*7 = 42"
        assert chat.turns("ok") == 1  # counted before the door writes its end


# --- stream_turn: the whole response ----------------------------------------------------------


def request_with(messages: list[Message]) -> Request:
    """A request whose `receive` gives these messages, then waits forever."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    return Request(scope, receive)


async def test_the_response_writes_the_end_once_the_thread_is_free(chat: Chat) -> None:
    request = request_with([])

    async def frames(feed: TurnFeed[StreamEvent]) -> AsyncIterator[str]:
        async for event in feed:
            busy = chat.kit.locks.busy(THREAD.stored_id)
            yield f"{event.kind} {'busy' if busy else 'free'}\n"

    async with chat.open(THREAD, ASK) as turn:
        response = await stream_turn(request, turn, frames)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await response(dict(request.scope), request.receive, send)

    lines = b"".join(m.get("body", b"") for m in sent).decode().splitlines()
    assert lines[-1] == "done free"
    assert set(lines[:-1]) == {"text busy"}
    assert not chat.kit.locks.busy(THREAD.stored_id)


async def test_a_client_gone_before_the_first_event_cancels_the_run_and_frees_the_thread(
    chat: Chat,
) -> None:
    cancelled = asyncio.Event()

    async def hung() -> AsyncGenerator[StreamEvent, None]:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        yield TextDelta("never")

    async def frames(feed: TurnFeed[StreamEvent]) -> AsyncIterator[str]:
        async for event in feed:
            yield event.kind

    with pytest.raises(ClientGone):
        async with chat.open(THREAD, ASK) as turn:
            await stream_turn(
                request_with([{"type": "http.disconnect"}]), turn, frames, events=hung()
            )
    assert cancelled.is_set()
    assert not chat.kit.locks.busy(THREAD.stored_id)
