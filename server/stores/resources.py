"""The production layer's resources, opened in the lifespan: Redis, cache, limits, cooldowns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from nodes.providers.cooldown import CooldownStore, InProcessCooldowns, RedisCooldowns
from server.settings import Settings
from server.stores.cache import ResponseCache
from server.stores.ratelimit import RateLimiter
from server.stores.redis import RedisLink, open_redis


@dataclass(frozen=True)
class Operations:
    """Shared by the routes and the graph: `AppState.ops`."""

    redis: RedisLink | None
    """None when REDIS_URL is unset."""
    cache: ResponseCache
    limiter: RateLimiter
    cooldowns: CooldownStore


def cooldown_store(settings: Settings, redis: RedisLink | None) -> CooldownStore:
    """Provider cooldowns: in Redis (shared by the replicas) when there is one."""
    local = InProcessCooldowns(
        threshold=settings.provider_cooldown_failures,
        cooldown=settings.provider_cooldown_seconds,
    )
    return local if redis is None else RedisCooldowns(redis, fallback=local)


@asynccontextmanager
async def open_operations(settings: Settings) -> AsyncIterator[Operations]:
    """Open Redis (if configured) and build what uses it; close it on exit."""
    async with open_redis(settings) as redis:
        yield Operations(
            redis=redis,
            cache=ResponseCache(settings, redis),
            limiter=RateLimiter(settings, redis),
            cooldowns=cooldown_store(settings, redis),
        )
