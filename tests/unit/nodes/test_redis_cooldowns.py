"""Provider cooldowns kept in a real Redis: the breaker's rules, shared, and its fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from nodes.providers.cooldown import InProcessCooldowns, RedisCooldowns
from server.stores.redis import RedisLink
from tests.fakes.redis_server import RedisProcess

pytestmark = pytest.mark.redis


@pytest.fixture
async def link(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisLink]:
    client = Redis.from_url(redis_url, socket_timeout=0.25, retry=Retry(NoBackoff(), 0))
    yield RedisLink(client, prefix=redis_prefix, retry_seconds=0)
    await client.aclose()


def store(link: RedisLink, threshold: int = 2, cooldown: float = 60.0) -> RedisCooldowns:
    return RedisCooldowns(link, InProcessCooldowns(threshold=threshold, cooldown=cooldown))


async def test_a_cooldown_started_by_one_replica_is_seen_by_another(link: RedisLink) -> None:
    a, b = store(link), store(link)

    assert await a.record_failure("p") is False
    assert await b.record_failure("p") is True  # consecutive across replicas
    assert await a.is_cooling("p")
    assert await b.is_cooling("p")
    assert not await b.is_cooling("other")

    await b.record_success("p")
    assert not await a.is_cooling("p")
    assert await a.record_failure("p") is False  # the count started again


async def test_after_the_cooldown_one_failure_cools_down_again(link: RedisLink) -> None:
    cooldowns = store(link, threshold=3, cooldown=0.2)
    for _ in range(3):
        opened = await cooldowns.record_failure("p")
    assert opened
    await asyncio.sleep(0.3)

    assert not await cooldowns.is_cooling("p")  # half-open: one trial goes through
    assert await cooldowns.record_failure("p") is True


async def test_without_redis_the_in_process_breaker_decides(own_redis: RedisProcess) -> None:
    client = Redis.from_url(own_redis.url, socket_timeout=0.25, retry=Retry(NoBackoff(), 0))
    link = RedisLink(client, prefix="cd", retry_seconds=0)
    cooldowns = store(link, threshold=1)
    own_redis.stop()
    try:
        assert await cooldowns.record_failure("p") is True
        assert await cooldowns.is_cooling("p")
        assert link.errors == 2
    finally:
        await client.aclose()


async def test_cooldown_left_is_the_shared_markers_time_to_live(link: RedisLink) -> None:
    a, b = store(link, threshold=1, cooldown=30), store(link, threshold=1, cooldown=30)
    assert await b.cooldown_left("p") == 0.0

    await a.record_failure("p")

    left = await b.cooldown_left("p")  # another replica sees how long it has left
    assert 25 < left <= 30
    await a.record_success("p")
    assert await b.cooldown_left("p") == 0.0
