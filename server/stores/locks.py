"""One run per thread at a time: a second request on a busy thread gets 409.

The lock lives in-process, and also in Redis when it is configured so that every replica
sees it (`SET NX PX` with a random token; released only by its owner). If Redis fails the
in-process lock still protects this replica, and the request is served.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.refusals import thread_busy
from server.stores.redis import RedisLink

logger = logging.getLogger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ThreadLocks:
    """Per-thread exclusive locks, shared through Redis when there is one."""

    def __init__(self, redis: RedisLink | None = None, *, ttl_seconds: float = 900.0) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl_seconds * 1000)
        self._held: set[str] = set()

    def busy(self, thread_id: str) -> bool:
        """True while this replica runs the thread (for tests and /ready)."""
        return thread_id in self._held

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread's lock for the block.

        Raises:
            Refused: `thread_busy` when the thread is busy here or on another replica.
        """
        if thread_id in self._held:
            raise thread_busy()
        self._held.add(thread_id)
        try:
            token = await self._acquire_shared(thread_id)
            try:
                yield
            finally:
                await self._release_shared(thread_id, token)
        finally:
            self._held.discard(thread_id)

    async def _acquire_shared(self, thread_id: str) -> str | None:
        redis = self._redis
        if redis is None or not redis.usable:
            return None
        token = secrets.token_hex(8)
        try:
            taken = await redis.client.set(
                redis.key("thread-lock", thread_id), token, nx=True, px=self._ttl_ms
            )
        except redis.error_types as error:
            redis.failed(error)
            logger.warning(
                "thread lock without Redis (%s): this replica only", type(error).__name__
            )
            return None
        if not taken:
            raise thread_busy()
        return token

    async def _release_shared(self, thread_id: str, token: str | None) -> None:
        redis = self._redis
        if redis is None or token is None:
            return
        try:
            await redis.client.eval(_RELEASE, 1, redis.key("thread-lock", thread_id), token)
        except redis.error_types as error:
            redis.failed(error)
            logger.warning(
                "thread lock not released in Redis (%s); it expires", type(error).__name__
            )
