"""Response cache for stateless, deterministic chat completions: in-process LRU, then Redis.

What is cached: the answer of a request that carries no thread id (a thread's answer
depends on its stored history), no client tools, and `temperature: 0` (other temperatures
are meant to vary; `CACHE_ANY_TEMPERATURE=true` caches them anyway), and only when the first
provider that was tried gave it: a fallback's answer is served but not kept. One entry serves both
JSON and streamed requests: it stores the answer's text, finish reason and usage, and a hit
is replayed in either shape.

The key is the SHA-256 of the graph version (`GRAPH_VERSION`, plus `CACHE_VERSION`), the
alias's provider chain, the caller's key id (unless `CACHE_SHARED_ACROSS_KEYS`) and the
normalised request (model, messages, sampling parameters). Invalidation: change
`CACHE_VERSION`, or `POST /admin/cache/clear`, which bumps a generation number in Redis so
every replica's in-process layer stops using its old entries too.

`Cache-Control: no-cache` on the request skips the lookup but stores the fresh answer (the
HTTP meaning: revalidate with the origin); `no-store` neither reads nor writes.

Redis errors never fail a request: they are counted, and Redis is left alone for
`REDIS_RETRY_SECONDS` before it is tried again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from langchain_core.messages import AIMessage
from redis.exceptions import RedisError

from server.openai.protocol import ChatCompletionRequest
from server.openai.service import StreamEvent, TextDelta, TurnDone, final_text
from server.ops.redis import RedisLink
from server.settings import Settings

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

    def output(self) -> dict[str, Any]:
        """The answer in the shape of a graph run's output, as the routes expect it."""
        return {
            "messages": [AIMessage(content=self.text)],
            "finish_reason": self.finish_reason,
            "usage": self.usage,
        }

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """The answer as a run's stream events: all the text at once, then the end."""
        if self.text:
            yield TextDelta(self.text)
        yield TurnDone(self.output())


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


def _cache_control(headers: Mapping[str, str]) -> set[str]:
    value = headers.get("cache-control") or ""
    return {part.strip().split("=", 1)[0].lower() for part in value.split(",") if part.strip()}


@dataclass
class CacheLookup:
    """The cache's answer for one request, and how to fill it on a miss.

    Routes use `complete` and `stream` around their own work; both pass it through
    untouched when the request is not cacheable.
    """

    cache: ResponseCache | None
    key: str | None = None
    generation: str = "0"
    answer: CachedAnswer | None = None
    read: bool = True

    @property
    def hit(self) -> bool:
        """True when the answer comes from the cache."""
        return self.answer is not None

    @property
    def headers(self) -> dict[str, str]:
        """`X-Cache: hit|miss|bypass` for cacheable requests; nothing otherwise."""
        if self.key is None:
            return {}
        if self.hit:
            return {"x-cache": "hit"}
        return {"x-cache": "miss" if self.read else "bypass"}

    async def complete(self, run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """The cached output, or `run()`'s, stored on the way out."""
        if self.answer is not None:
            return self.answer.output()
        output = await run()
        await self._store(output)
        return output

    def stream(
        self, run: Callable[[], AsyncGenerator[StreamEvent, None]]
    ) -> AsyncGenerator[StreamEvent, None]:
        """The cached answer replayed as events, or `run()`'s events, stored at the end."""
        if self.answer is not None:
            return self.answer.events()
        if self.key is None:
            return run()
        return self._tap(run())

    async def _tap(
        self, events: AsyncGenerator[StreamEvent, None]
    ) -> AsyncGenerator[StreamEvent, None]:
        try:
            async for event in events:
                if isinstance(event, TurnDone):
                    await self._store(event.output)
                yield event
        finally:
            await events.aclose()

    async def _store(self, output: dict[str, Any]) -> None:
        if self.cache is None or self.key is None:
            return
        if any(attempt.get("outcome") != "ok" for attempt in output.get("attempts") or []):
            # A fallback's answer (some provider failed or was skipped) is not kept: once
            # the preferred provider is back, the next identical request should reach it.
            self.cache.note_uncached_fallback()
            return
        answer = CachedAnswer(
            text=final_text(output),
            finish_reason=str(output.get("finish_reason") or "stop"),
            usage=dict(output["usage"]) if output.get("usage") else None,
        )
        await self.cache.put(self.key, self.generation, answer)


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

    # --- keys ------------------------------------------------------------------------------

    def key_for(
        self, body: ChatCompletionRequest, *, thread: object | None, caller_id: str | None
    ) -> str | None:
        """The request's cache key, or None when its answer must not be cached."""
        settings = self._settings
        if not settings.cache_enabled or thread is not None or body.tools:
            return None
        if body.metadata and "thread_id" in body.metadata:
            return None
        if body.n not in (None, 1):
            return None
        if body.temperature != 0 and not settings.cache_any_temperature:
            return None
        normalised = {
            "version": [GRAPH_VERSION, settings.cache_version],
            "scope": "*" if settings.cache_shared_across_keys else caller_id,
            "chain": settings.agent_models.get(body.model),
            "model": body.model,
            "messages": [m.model_dump(mode="json", exclude_none=True) for m in body.messages],
            "temperature": body.temperature,
            "top_p": body.top_p,
            "max_tokens": body.max_completion_tokens or body.max_tokens,
            "stop": body.stop_list,
            "response_format": body.response_format,
            "openai_params": body.openai_params,
        }
        text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _redis_key(self, generation: str, key: str) -> str:
        assert self._redis is not None
        return self._redis.key("cache", generation, key)

    def _generation_key(self) -> str:
        assert self._redis is not None
        return self._redis.key("cache-generation")

    async def _current_generation(self) -> str:
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
        except RedisError as error:
            redis.failed(error)
            self._event(REDIS, "error")
            return self._generation
        redis.succeeded()
        self._generation = value.decode() if isinstance(value, bytes) else str(value or "0")
        self._generation_checked = now
        return self._generation

    # --- reads and writes ------------------------------------------------------------------

    async def lookup(
        self, body: ChatCompletionRequest, request: Request, thread: object | None
    ) -> CacheLookup:
        """Look the request up; the result also knows how to store the answer on a miss.

        `thread` is the request's thread (id or object): anything but None means a stateful
        run, which is never cached.
        """
        caller = getattr(request.state, "caller", None)
        key = self.key_for(body, thread=thread, caller_id=getattr(caller, "key_id", None))
        if key is None:
            return CacheLookup(self)
        directives = _cache_control(request.headers)
        if "no-store" in directives:
            self._event("request", "bypass")
            return CacheLookup(self)
        generation = await self._current_generation()
        if "no-cache" in directives:
            self._event("request", "bypass")
            return CacheLookup(self, key, generation, read=False)
        answer = await self.get(key, generation)
        return CacheLookup(self, key, generation, answer)

    async def get(self, key: str, generation: str) -> CachedAnswer | None:
        """The answer stored under `key`, from memory first, then Redis."""
        ttl = self._settings.cache_ttl_seconds
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
                pipe.get(self._redis_key(generation, key))
                pipe.pttl(self._redis_key(generation, key))
                blob, pttl = await pipe.execute()
        except RedisError as error:
            redis.failed(error)
            self._event(REDIS, "error")
            return None
        redis.succeeded()
        if blob is None:
            self._event(REDIS, "miss")
            return None
        answer = self._decode(REDIS, blob)
        if answer is None:
            return None
        self._event(REDIS, "hit")
        remaining = pttl / 1000 if isinstance(pttl, int) and pttl > 0 else ttl
        self._memory.put(f"{generation}:{key}", blob, min(ttl, remaining))
        return answer

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
        except RedisError as error:
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
        except RedisError as error:
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


async def get_response_cache(request: Request) -> ResponseCache:
    """FastAPI dependency: the app's response cache."""
    cache: ResponseCache = request.state.agent.ops.cache
    return cache


ResponseCacheDep = Annotated[ResponseCache, Depends(get_response_cache)]
