"""The response cache on the `/v1` door: which requests are cacheable, and a hit replayed.

The store (`server.stores.cache`) keeps answers under opaque keys; this module decides the key
of a chat completion request, reads `Cache-Control`, and wraps the door's run so that a hit
replaces it and a miss stores its answer. See `server.stores.cache` for what is cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage

from server.chat.protocol import ChatCompletionRequest
from server.stores.cache import GRAPH_VERSION, CachedAnswer, ResponseCache
from server.turns.events import StreamEvent, TextDelta, TurnDone
from server.turns.result import TurnResult


def answer_result(answer: CachedAnswer) -> TurnResult:
    """A cached answer as a turn's result, as the routes expect it."""
    output: dict[str, Any] = {
        "messages": [AIMessage(content=answer.text)],
        "finish_reason": answer.finish_reason,
        "usage": answer.usage,
    }
    return TurnResult.of(output)


async def answer_events(answer: CachedAnswer) -> AsyncGenerator[StreamEvent, None]:
    """A cached answer as a run's stream events: all the text at once, then the end."""
    if answer.text:
        yield TextDelta(answer.text)
    yield TurnDone(answer_result(answer))


def cache_key(
    cache: ResponseCache,
    body: ChatCompletionRequest,
    *,
    caller_id: str | None,
    shared: bool | None = None,
) -> str | None:
    """The key of a stateless request, or None when its answer must not be cached.

    `shared`: the key every caller shares (True) or the caller's own (False); by default,
    whichever `CACHE_SHARED_ACROSS_KEYS` says.
    """
    settings = cache.settings
    if shared is None:
        shared = settings.cache_shared_across_keys
    if not settings.cache_enabled or body.tools:
        return None
    if body.n not in (None, 1):
        return None
    if body.temperature != 0 and not settings.cache_any_temperature:
        return None
    normalised = {
        "version": [GRAPH_VERSION, settings.cache_version],
        "scope": "*" if shared else caller_id,
        "chain": settings.agent_models.get(body.model),
        "model": body.model,
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in body.messages],
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": body.max_output_tokens,
        "stop": body.stop_list,
        "response_format": body.response_format,
        "openai_params": body.openai_params,
    }
    text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_control(headers: Mapping[str, str]) -> set[str]:
    value = headers.get("cache-control") or ""
    return {part.strip().split("=", 1)[0].lower() for part in value.split(",") if part.strip()}


@dataclass
class CacheLookup:
    """The cache's answer for one request, and how to fill it on a miss.

    Routes use `complete` and `stream` around their own work; both pass it through
    untouched when the request is not cacheable.

    `key` is the caller's own entry; `shared_key` the entry every caller reads, when answers
    are shared across keys (CACHE_SHARED_ACROSS_KEYS). An answer built from the caller's own
    data (the run's `caller_scoped`: passages of its knowledge namespace) is stored under
    `key` only; any other under `shared_key`.
    """

    cache: ResponseCache | None
    key: str | None = None
    generation: str = "0"
    answer: CachedAnswer | None = None
    read: bool = True
    shared_key: str | None = None

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

    async def complete(self, run: Callable[[], Awaitable[TurnResult]]) -> TurnResult:
        """The cached result, or `run()`'s, stored on the way out."""
        if self.answer is not None:
            return answer_result(self.answer)
        result = await run()
        await self._store(result)
        return result

    def stream(
        self, run: Callable[[], AsyncGenerator[StreamEvent, None]]
    ) -> AsyncGenerator[StreamEvent, None]:
        """The cached answer replayed as events, or `run()`'s events, stored at the end."""
        if self.answer is not None:
            return answer_events(self.answer)
        if self.key is None:
            return run()
        return self._tap(run())

    async def _tap(
        self, events: AsyncGenerator[StreamEvent, None]
    ) -> AsyncGenerator[StreamEvent, None]:
        try:
            async for event in events:
                if isinstance(event, TurnDone):
                    await self._store(event.result)
                yield event
        finally:
            await events.aclose()

    async def _store(self, result: TurnResult) -> None:
        if self.cache is None or self.key is None:
            return
        output = result.output
        if any(attempt.get("outcome") != "ok" for attempt in output.get("attempts") or []):
            # A fallback's answer (some provider failed or was skipped) is not kept: once
            # the preferred provider is back, the next identical request should reach it.
            self.cache.note_uncached_fallback()
            return
        answer = CachedAnswer(
            text=result.text,
            finish_reason=result.finish_reason,
            usage=dict(result.usage) if result.usage else None,
        )
        shared = self.shared_key if output.get("caller_scoped") is not True else None
        await self.cache.put(shared or self.key, self.generation, answer)


async def lookup(
    cache: ResponseCache,
    body: ChatCompletionRequest,
    headers: Mapping[str, str],
    *,
    stateful: bool,
    caller_id: str | None,
    own_data: bool = False,
) -> CacheLookup:
    """Look a request up; the result also knows how to store the answer on a miss.

    A stateful run (on a thread) is never cached: its answer depends on the stored history.
    With answers shared across keys, the caller's own entry is read first, then the shared
    one, unless `own_data`: a caller that has data of its own (documents in its knowledge
    namespace) could get another answer than a shared one, so it reads its own entries only.
    """
    key = None if stateful else cache_key(cache, body, caller_id=caller_id, shared=False)
    if key is None:
        return CacheLookup(cache)
    shared_key = None
    if cache.settings.cache_shared_across_keys:
        shared_key = cache_key(cache, body, caller_id=caller_id, shared=True)
    directives = _cache_control(headers)
    if "no-store" in directives:
        cache.count_bypass()
        return CacheLookup(cache)
    generation = await cache.current_generation()
    if "no-cache" in directives:
        cache.count_bypass()
        return CacheLookup(cache, key, generation, read=False, shared_key=shared_key)
    keys = [key] if shared_key is None or own_data else [key, shared_key]
    answer = await cache.get_any(keys, generation)
    return CacheLookup(cache, key, generation, answer, shared_key=shared_key)
