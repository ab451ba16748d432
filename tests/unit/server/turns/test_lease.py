"""A thread's lock taken before its run starts: held until released, by whoever ends first."""

from __future__ import annotations

import pytest

from server.refusals import Refused
from server.stores.locks import ThreadLocks
from server.turns.lease import ThreadLease


async def test_a_lease_holds_the_lock_until_released_once_whoever_releases_it() -> None:
    locks, lease = ThreadLocks(), ThreadLease()
    await lease.take(locks, "t")
    assert locks.busy("t")
    with pytest.raises(Refused):
        await ThreadLease().take(locks, "t")  # a second taker gets the 409 at once
    assert lease.claim()
    assert not lease.claim()  # the lease is one run's
    await lease.release()  # the run, when it has finished
    assert not locks.busy("t")
    async with locks.hold("t"):
        await lease.release()  # the request's end, later: it frees nothing it does not hold
        assert locks.busy("t")
