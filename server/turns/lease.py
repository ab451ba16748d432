"""A thread's lock taken before the run it guards starts: for a door whose response starts first.

The kit takes the lock into a lease (`TurnKit.lease`) while a 409 can still be the answer,
and the run it opens claims it (`TurnKit.open(lease=...)`).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio

from server.stores.locks import ThreadLocks

__all__ = ["ThreadLease"]


class ThreadLease:
    """A thread's lock taken before the work it guards starts, released once it is done.

    For a door whose response starts before its run does (a stream): the lock is taken
    while a 409 can still be the answer, and released by whichever ends first: the run, as
    soon as it has finished (before the stream's last event), or the request, however it
    ended (a failure before the run started, a client that left before the first byte).
    """

    def __init__(self) -> None:
        self._held = AsyncExitStack()
        self._claimed = False

    async def take(self, locks: ThreadLocks, thread_id: str) -> None:
        """Hold `thread_id`'s lock until `release`.

        Raises:
            Refused: `thread_busy` when the thread is busy (`ThreadLocks.hold`).
        """
        await self._held.enter_async_context(locks.hold(thread_id))

    def claim(self) -> bool:
        """True once, for the one run the lease was taken for (then it is that run's)."""
        claimed, self._claimed = self._claimed, True
        return not claimed

    async def release(self) -> None:
        """Release the lock (once; later calls do nothing), even while being cancelled."""
        with anyio.CancelScope(shield=True):
            await self._held.aclose()
