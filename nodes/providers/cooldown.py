"""Circuit breaker per provider target: a target that keeps failing is skipped for a while.

A breaker must never turn a blip into an outage: when every target of a chain is cooling
down, the fallback node still tries the one whose cooldown ends first (a half-open trial,
see `nodes.provider_chain.call_chain`), so `cooldown_left` tells how long each one has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # redis-py is loaded only with a Redis link (REDIS_URL set)
    from redis.asyncio import Redis
    from redis.exceptions import RedisError


class CooldownStore(Protocol):
    """Where failure counts and cooldowns live (in-process here; Redis when shared)."""

    async def is_cooling(self, provider: str) -> bool:
        """True while the provider is cooling down and must be skipped."""
        ...

    async def cooldown_left(self, provider: str) -> float:
        """Seconds until the provider's cooldown ends; 0.0 when it is not cooling down."""
        ...

    async def record_failure(self, provider: str) -> bool:
        """Count a failure; True when this failure started a cooldown."""
        ...

    async def record_success(self, provider: str) -> None:
        """Reset the provider's failure count."""
        ...


@dataclass
class InProcessCooldowns:
    """Consecutive failures per provider; `threshold` in a row cool it for `cooldown` seconds."""

    threshold: int = 3
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, int] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    async def is_cooling(self, provider: str) -> bool:
        """True until the cooldown ends; afterwards one trial call is let through."""
        return await self.cooldown_left(provider) > 0.0

    async def cooldown_left(self, provider: str) -> float:
        """Seconds of cooldown left; once it has ended the breaker is half-open."""
        until = self._until.get(provider)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0.0:
            del self._until[provider]
            # Half-open: one more failure cools it down again at once.
            self._failures[provider] = self.threshold - 1
            return 0.0
        return left

    async def record_failure(self, provider: str) -> bool:
        """Count a failure and start a cooldown when the threshold is reached."""
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self.threshold:
            self._until[provider] = self.clock() + self.cooldown
            self._failures[provider] = 0
            return True
        return False

    async def record_success(self, provider: str) -> None:
        """A success closes the breaker."""
        self._failures.pop(provider, None)
        self._until.pop(provider, None)

    def cooling(self) -> list[str]:
        """Providers cooling down now (for readiness reports)."""
        now = self.clock()
        return [name for name, until in self._until.items() if until > now]


class RedisGate(Protocol):
    """The Redis connection as the cooldowns see it (`server.stores.redis.RedisLink`)."""

    client: Redis
    error_types: tuple[type[RedisError], ...]
    """What the client raises when Redis fails."""

    @property
    def usable(self) -> bool:
        """False while backing off after an error."""
        ...

    def key(self, *parts: str) -> str:
        """A namespaced key."""
        ...

    def failed(self, error: RedisError) -> None:
        """Count an error and back off."""
        ...

    def succeeded(self) -> None:
        """Redis answered."""
        ...


# KEYS: failure count, cooldown marker. ARGV: threshold, cooldown ms, failure-count expiry ms.
# Starting a cooldown leaves the count at threshold - 1: once the marker expires, the next
# failure cools the provider down again at once (half-open), a success resets it.
_RECORD_FAILURE = """
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if count >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  redis.call('SET', KEYS[1], tonumber(ARGV[1]) - 1, 'PX', ARGV[3])
  return 1
end
return 0
"""


class RedisCooldowns:
    """Cooldowns shared by every replica through Redis, with the in-process breaker's rules.

    A provider cooled down by one replica is skipped by all of them. While Redis is
    unreachable the in-process `fallback` decides, so a Redis outage never fails a request.
    """

    def __init__(self, redis: RedisGate, fallback: InProcessCooldowns) -> None:
        self._redis = redis
        self._fallback = fallback
        self._record = redis.client.register_script(_RECORD_FAILURE)
        self._cooldown_ms = max(1, int(fallback.cooldown * 1000))
        # Consecutive failures older than this are forgotten (keeps Redis tidy).
        self._count_ms = max(self._cooldown_ms * 10, 600_000)

    def _keys(self, provider: str) -> list[str]:
        return [
            self._redis.key("cooldown", provider, "failures"),
            self._redis.key("cooldown", provider, "until"),
        ]

    async def is_cooling(self, provider: str) -> bool:
        """True while any replica's cooldown of the provider lasts."""
        return await self.cooldown_left(provider) > 0.0

    async def cooldown_left(self, provider: str) -> float:
        """Seconds left of the shared cooldown (the marker's TTL); 0.0 when there is none."""
        if not self._redis.usable:
            return await self._fallback.cooldown_left(provider)
        try:
            ttl_ms = int(await self._redis.client.pttl(self._keys(provider)[1]))
        except self._redis.error_types as error:
            self._redis.failed(error)
            return await self._fallback.cooldown_left(provider)
        self._redis.succeeded()
        # PTTL: -2 when the marker is gone, -1 for a key without expiry (never written so).
        return ttl_ms / 1000 if ttl_ms > 0 else 0.0

    async def record_failure(self, provider: str) -> bool:
        """Count a failure for every replica; True when it started a cooldown."""
        if not self._redis.usable:
            return await self._fallback.record_failure(provider)
        args = [self._fallback.threshold, self._cooldown_ms, self._count_ms]
        try:
            opened = await self._record(keys=self._keys(provider), args=args)
        except self._redis.error_types as error:
            self._redis.failed(error)
            return await self._fallback.record_failure(provider)
        self._redis.succeeded()
        return bool(opened)

    async def record_success(self, provider: str) -> None:
        """Close the breaker for every replica."""
        await self._fallback.record_success(provider)
        if not self._redis.usable:
            return
        try:
            await self._redis.client.delete(*self._keys(provider))
        except self._redis.error_types as error:
            self._redis.failed(error)
            return
        self._redis.succeeded()
