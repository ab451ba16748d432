"""The shared Redis connection: a pooled client with short timeouts, and what to do when it fails.

Redis is an accelerator here, never a dependency: the cache, the cooldowns and the rate
limits all keep working in-process without it. `RedisLink` wraps the client with the
bookkeeping they share: a key prefix, an error counter, and a short back-off after an error
so that a dead Redis costs one timeout now and then instead of one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from server.settings import Settings

if TYPE_CHECKING:  # redis-py is imported only when REDIS_URL is set (about 70 ms of a start)
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RedisLink:
    """A Redis client plus its health: key prefix, error count, back-off after failures.

    redis-py reconnects on the next command by itself; the back-off only decides whether
    that next command is worth trying yet.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        retry_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self.errors = 0
        """Redis commands that failed since start (every user of the link counts here)."""
        self._clock = clock
        self._down_until: float | None = None
        from redis.exceptions import RedisError  # loaded with the client: free here

        self.error_types: tuple[type[RedisError], ...] = (RedisError,)
        """What the client raises when Redis fails, for the `except` clauses of the link's
        users: none of them imports redis-py, so a service without Redis never loads it."""

    def key(self, *parts: str) -> str:
        """A namespaced key: `<prefix>:<part>:<part>…`."""
        return ":".join((self.prefix, *parts))

    @property
    def usable(self) -> bool:
        """False for a short while after an error: callers go without Redis meanwhile."""
        return self._down_until is None or self._clock() >= self._down_until

    @property
    def healthy(self) -> bool:
        """True unless the last command failed."""
        return self._down_until is None

    def failed(self, error: RedisError) -> None:
        """Count an error and back off; logged once per outage, not once per request."""
        self.errors += 1
        if self._down_until is None:
            logger.warning("Redis unreachable (%s); serving without it", type(error).__name__)
        self._down_until = self._clock() + self.retry_seconds

    def succeeded(self) -> None:
        """A command worked: Redis is back in use."""
        if self._down_until is not None:
            logger.info("Redis reachable again")
            self._down_until = None

    async def ping(self) -> bool:
        """Check Redis now, regardless of the back-off (for /ready)."""
        try:
            await self.client.ping()
        except self.error_types as error:
            self.failed(error)
            return False
        self.succeeded()
        return True


@asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[RedisLink | None]:
    """The pooled client when REDIS_URL is set (None otherwise); closed on exit.

    Nothing is sent at start: a Redis that is down when the app starts is not a reason
    to refuse to serve, and it is used as soon as it answers.
    """
    if settings.redis_url is None:
        yield None
        return
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        health_check_interval=30,
        # No retries inside redis-py: the caller goes on without Redis instead of waiting.
        retry=Retry(NoBackoff(), 0),
    )
    link = RedisLink(
        client, prefix=settings.redis_prefix, retry_seconds=settings.redis_retry_seconds
    )
    try:
        yield link
    finally:
        await client.aclose()
