"""One run per thread, in-process (the Redis-shared lock is tested against a real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from server.errors import status_of
from server.refusals import Refused
from server.stores.locks import ThreadLocks


async def test_a_second_hold_of_a_busy_thread_is_a_409_to_retry() -> None:
    locks = ThreadLocks()
    async with locks.hold("t"):
        assert locks.busy("t")
        with pytest.raises(Refused) as caught:
            async with locks.hold("t"):
                pytest.fail("two runs on one thread")
        assert locks.busy("t")  # the refused request did not free the running one
    error = caught.value
    assert (status_of(error), error.code, error.headers) == (
        409,
        "thread_busy",
        {"retry-after": "1"},
    )
    assert not locks.busy("t")


async def test_a_concurrent_request_is_refused_at_once_not_queued() -> None:
    locks = ThreadLocks()
    holding, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with locks.hold("t"):
            holding.set()
            await release.wait()

    task = asyncio.create_task(first())
    await holding.wait()
    with pytest.raises(Refused):
        await asyncio.wait_for(locks.hold("t").__aenter__(), timeout=1)
    release.set()
    await task
    async with locks.hold("t"):  # free again once the first is done
        pass


async def test_different_threads_do_not_block_each_other() -> None:
    locks = ThreadLocks()
    async with locks.hold("a"), locks.hold("b"):
        assert (locks.busy("a"), locks.busy("b"), locks.busy("c")) == (True, True, False)


async def test_the_lock_is_released_when_the_run_fails() -> None:
    locks = ThreadLocks()
    with pytest.raises(RuntimeError, match="run failed"):
        async with locks.hold("t"):
            raise RuntimeError("run failed")
    assert not locks.busy("t")
    async with locks.hold("t"):
        assert locks.busy("t")


async def test_the_lock_is_released_when_the_run_is_cancelled() -> None:
    locks = ThreadLocks()
    inside = asyncio.Event()

    async def run() -> None:
        async with locks.hold("t"):
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(run())
    await inside.wait()
    assert locks.busy("t")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not locks.busy("t")
