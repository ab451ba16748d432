"""Response cache for stateless, deterministic chat completions: in-process LRU, then Redis.

What is cached: the answer of a request that carries no thread id (a thread's answer
depends on its stored history), no client tools, and `temperature: 0` (other temperatures
are meant to vary; `CACHE_ANY_TEMPERATURE=true` caches them anyway), and only when the first
provider that was tried gave it: a fallback's answer is served but not kept. One entry serves both
JSON and streamed requests: it stores the answer's text, finish reason and usage, and a hit
is replayed in either shape.

The key is the SHA-256 of the graph version (`GRAPH_VERSION`, plus `CACHE_VERSION`), the
alias's provider chain, the caller's key id (unless `CACHE_SHARED_ACROSS_KEYS`) and the
normalised request (model, messages, sampling parameters). Even when answers are shared
across keys, one built from the caller's own data (passages of its knowledge namespace) is
kept under the caller's key only, and a caller with documents of its own reads only its own
entries (`server.chat.cached`). Invalidation: change
`CACHE_VERSION`, or `POST /admin/cache/clear`, which bumps a generation number in Redis so
every replica's in-process layer stops using its old entries too.

`Cache-Control: no-cache` on the request skips the lookup but stores the fresh answer (the
HTTP meaning: revalidate with the origin); `no-store` neither reads nor writes.

Redis errors never fail a request: they are counted, and Redis is left alone for
`REDIS_RETRY_SECONDS` before it is tried again.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.settings import Settings
from server.stores.redis import RedisLink

logger = logging.getLogger(__name__)

GRAPH_VERSION = "1"
"""Bump when a change to the graph, prompts or tools changes the answers it gives."""

MEMORY = "memory"
REDIS = "redis"

_PLAIN = b"j"
_ZLIB = b"z"
_GENERATION_RECHECK_SECONDS = 1.0


class CacheObserver(Protocol):
    """Told about every cache event (for metrics).

    Layers and outcomes: `memory`/`redis` x `hit`/`miss`/`error` for lookups,
    `memory`/`redis` x `store`/`error` for writes, `request` x `bypass` for a request the
    client asked not to read from the cache, and `request` x `fallback` for an answer not
    stored because a fallback provider gave it.
    """

    def observe(self, layer: str, outcome: str) -> None:
        """Count one event."""
        ...


@dataclass(frozen=True)
class CachedAnswer:
    """What a cache entry holds: enough to answer as JSON or as a stream."""

    text: str
    finish_reason: str
    usage: dict[str, Any] | None


def encode(answer: CachedAnswer, compress_min_bytes: int) -> bytes:
    """Serialise an entry; zlib-compress it when it is at least `compress_min_bytes` long."""
    data = json.dumps(
        {"t": answer.text, "f": answer.finish_reason, "u": answer.usage},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    if len(data) >= compress_min_bytes:
        return _ZLIB + zlib.compress(data)
    return _PLAIN + data


def decode(blob: bytes) -> CachedAnswer:
    """Read an entry written by `encode`.

    Raises:
        ValueError: The entry is damaged or was written by an unknown format.
    """
    tag, data = blob[:1], blob[1:]
    try:
        if tag == _ZLIB:
            data = zlib.decompress(data)
        elif tag != _PLAIN:
            raise ValueError(f"unknown cache entry format {tag!r}")
        value = json.loads(data)
        return CachedAnswer(text=str(value["t"]), finish_reason=str(value["f"]), usage=value["u"])
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"damaged cache entry: {err}") from err


@dataclass
class MemoryLayer:
    """A bounded LRU of encoded entries with per-entry expiry."""

    max_entries: int
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)

    def get(self, key: str) -> bytes | None:
        """The entry if present and not expired (expired ones are dropped on the way)."""
        item = self._entries.get(key)
        if item is None:
            return None
        expires, blob = item
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return blob

    def put(self, key: str, blob: bytes, ttl: float) -> None:
        """Store, evicting the least recently used entries beyond `max_entries`."""
        if self.max_entries <= 0:
            return
        self._entries[key] = (self.clock() + ttl, blob)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> int:
        """Drop everything; how many entries there were."""
        count = len(self._entries)
        self._entries.clear()
        return count

    def __len__(self) -> int:
        return len(self._entries)


class ResponseCache:
    """Two layers, in-process LRU in front of Redis, with TTL, compression and stats."""

    def __init__(
        self,
        settings: Settings,
        redis: RedisLink | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._redis = redis
        self._clock = clock
        self._memory = MemoryLayer(settings.cache_max_entries, clock=clock)
        self._observers: list[CacheObserver] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._generation = "0"
        self._generation_checked: float | None = None

    @property
    def settings(self) -> Settings:
        """The cache's settings (what is cacheable, the versions in the key)."""
        return self._settings

    def count_bypass(self) -> None:
        """Count a request the client asked not to read from the cache."""
        self._event("request", "bypass")

    @property
    def enabled(self) -> bool:
        """Whether the cache is on at all (CACHE_ENABLED)."""
        return self._settings.cache_enabled

    def add_observer(self, observer: CacheObserver) -> None:
        """Have `observer` told about every cache event (the metrics use this)."""
        self._observers.append(observer)

    def note_uncached_fallback(self) -> None:
        """Count an answer not stored because it came from a fallback provider."""
        self._event("request", "fallback")

    def _event(self, layer: str, outcome: str) -> None:
        self._counts[layer, outcome] += 1
        for observer in self._observers:
            observer.observe(layer, outcome)

    def _redis_key(self, generation: str, key: str) -> str:
        assert self._redis is not None  # called on the Redis path only  # nosec B101
        return self._redis.key("cache", generation, key)

    def _generation_key(self) -> str:
        assert self._redis is not None  # called on the Redis path only  # nosec B101
        return self._redis.key("cache-generation")

    async def current_generation(self) -> str:
        """The generation bumped by `clear` on any replica (re-read at most once a second)."""
        redis = self._redis
        if redis is None or not redis.usable:
            return self._generation
        now = self._clock()
        checked = self._generation_checked
        if checked is not None and now - checked < _GENERATION_RECHECK_SECONDS:
            return self._generation
        try:
            value = await redis.client.get(self._generation_key())
        except redis.error_types as error:
            redis.failed(error)
            self._event(REDIS, "error")
            return self._generation
        redis.succeeded()
        self._generation = value.decode() if isinstance(value, bytes) else str(value or "0")
        self._generation_checked = now
        return self._generation

    # --- reads and writes ------------------------------------------------------------------

    async def get(self, key: str, generation: str) -> CachedAnswer | None:
        """The answer stored under `key`, from memory first, then Redis."""
        return await self.get_any([key], generation)

    async def get_any(self, keys: Sequence[str], generation: str) -> CachedAnswer | None:
        """The answer stored under the first of `keys` that has one, from memory, then Redis.

        One lookup, counted once per layer: the caller's own entry and the shared one are
        read together when answers are shared across keys.
        """
        ttl = self._settings.cache_ttl_seconds
        for key in keys:
            blob = self._memory.get(f"{generation}:{key}")
            if blob is not None:
                answer = self._decode(MEMORY, blob)
                if answer is not None:
                    self._event(MEMORY, "hit")
                    return answer
        self._event(MEMORY, "miss")
        redis = self._redis
        if redis is None or not redis.usable:
            return None
        try:
            async with redis.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(self._redis_key(generation, key))
                    pipe.pttl(self._redis_key(generation, key))
                replies = await pipe.execute()
        except redis.error_types as error:
            redis.failed(error)
            self._event(REDIS, "error")
            return None
        redis.succeeded()
        for key, blob, pttl in zip(keys, replies[::2], replies[1::2], strict=True):
            if blob is None:
                continue
            answer = self._decode(REDIS, blob)
            if answer is None:
                continue
            self._event(REDIS, "hit")
            remaining = pttl / 1000 if isinstance(pttl, int) and pttl > 0 else ttl
            self._memory.put(f"{generation}:{key}", blob, min(ttl, remaining))
            return answer
        self._event(REDIS, "miss")
        return None

    def _decode(self, layer: str, blob: bytes) -> CachedAnswer | None:
        try:
            return decode(blob)
        except ValueError:
            logger.warning("dropping a damaged %s cache entry", layer)
            self._event(layer, "error")
            return None

    async def put(self, key: str, generation: str, answer: CachedAnswer) -> None:
        """Store in both layers (Redis failures are counted, not raised)."""
        settings = self._settings
        blob = encode(answer, settings.cache_compress_min_bytes)
        if settings.cache_max_entries > 0:
            self._memory.put(f"{generation}:{key}", blob, settings.cache_ttl_seconds)
            self._event(MEMORY, "store")
        redis = self._redis
        if redis is None or not redis.usable:
            return
        try:
            await redis.client.set(
                self._redis_key(generation, key),
                blob,
                px=max(1, int(settings.cache_ttl_seconds * 1000)),
            )
        except redis.error_types as error:
            redis.failed(error)
            self._event(REDIS, "error")
            return
        redis.succeeded()
        self._event(REDIS, "store")

    async def clear(self) -> dict[str, Any]:
        """Forget every entry: here, in Redis, and in the other replicas' memory layers.

        The other replicas learn of it through the generation number, within a second.

        Returns:
            How many entries went from each layer, and whether Redis could be cleared.
        """
        removed_memory = self._memory.clear()
        redis = self._redis
        if redis is None:
            return {"memory": removed_memory, "redis": None}
        try:
            generation = await redis.client.incr(self._generation_key())
            removed_redis = 0
            batch: list[bytes] = []
            async for name in redis.client.scan_iter(match=redis.key("cache", "*"), count=500):
                batch.append(name)
                if len(batch) >= 500:
                    removed_redis += await redis.client.unlink(*batch)
                    batch.clear()
            if batch:
                removed_redis += await redis.client.unlink(*batch)
        except redis.error_types as error:
            redis.failed(error)
            self._event(REDIS, "error")
            return {"memory": removed_memory, "redis": None, "error": "redis unreachable"}
        redis.succeeded()
        self._generation = str(generation)
        self._generation_checked = self._clock()
        logger.info("response cache cleared (generation %s)", generation)
        return {"memory": removed_memory, "redis": removed_redis}

    def stats(self) -> dict[str, Any]:
        """Counters by layer and outcome since start, and the state of each layer."""
        by_layer: dict[str, dict[str, int]] = {}
        for (layer, outcome), count in sorted(self._counts.items()):
            by_layer.setdefault(layer, {})[outcome] = count
        redis = self._redis
        return {
            "enabled": self._settings.cache_enabled,
            "events": by_layer,
            "memory_entries": len(self._memory),
            "memory_max_entries": self._settings.cache_max_entries,
            "redis": None
            if redis is None
            else {"healthy": redis.healthy, "errors": redis.errors, "generation": self._generation},
        }
