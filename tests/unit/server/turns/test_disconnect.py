"""Work is cancelled when the client leaves, and cancelled for good."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request
from starlette.types import Message

from server.turns.disconnect import ClientGone, cancel_until_stopped, until_disconnect


def request_with(messages: list[Message]) -> Request:
    """A request whose `receive` gives these messages, then waits forever."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


async def test_the_result_comes_back_when_the_client_stays() -> None:
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "answer"

    request = request_with([{"type": "http.request", "body": b"", "more_body": False}])
    assert await until_disconnect(request, work()) == "answer"


async def test_a_client_that_leaves_cancels_the_work() -> None:
    log: list[str] = []

    async def work() -> str:
        try:
            await asyncio.Event().wait()
        finally:
            log.append("cancelled")
        return "never"

    request = request_with([{"type": "http.request", "body": b""}, {"type": "http.disconnect"}])
    with pytest.raises(ClientGone):
        await asyncio.wait_for(until_disconnect(request, work()), timeout=5)
    assert log == ["cancelled"]


async def test_the_work_s_own_error_is_raised_as_it_is() -> None:
    async def work() -> None:
        raise ValueError("provider said no")

    with pytest.raises(ValueError, match="provider said no"):
        await until_disconnect(request_with([]), work())


async def test_a_task_that_swallows_one_cancel_is_cancelled_again() -> None:
    cancels: list[int] = []

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancels.append(1)  # a library that lost the cancellation and carried on
        await asyncio.Event().wait()

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_stopped(task, every=0.01), timeout=5)
    assert task.cancelled()
    assert cancels == [1]


async def test_a_failure_while_stopping_is_not_raised_to_the_one_who_stops() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.ensure_future(fails_on_cancel())
    await asyncio.sleep(0)
    await cancel_until_stopped(task)  # the client is gone: nobody to raise it to
    assert task.done()
    assert not task.cancelled()
    assert isinstance(task.exception(), RuntimeError)
