"""Response cache without I/O: entry format, the LRU layer, what gets a key, hits and misses."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from nodes.messages import client_message_id
from server.chat.cached import cache_key, lookup
from server.chat.protocol import ChatCompletionRequest
from server.stores.cache import CachedAnswer, MemoryLayer, ResponseCache, decode, encode
from server.turns.events import StreamEvent, TextDelta, TurnDone
from server.turns.result import TurnResult
from server.turns.threads import thread_of
from tests.conftest import SettingsFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(**overrides: Any) -> ChatCompletionRequest:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
    }
    body.update(overrides)
    return ChatCompletionRequest.model_validate(body)


def test_entries_round_trip_plain_and_compressed() -> None:
    short = CachedAnswer("hi", "stop", {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    long = CachedAnswer("é" * 5000, "length", None)

    assert encode(short, 1024)[:1] == b"j"
    assert decode(encode(short, 1024)) == short
    packed = encode(long, 1024)
    assert packed[:1] == b"z"
    assert len(packed) < 1000
    assert decode(packed) == long


@pytest.mark.parametrize("blob", [b"", b"x{}", b"z not zlib", b'j{"t": 1}', b"j[1]"])
def test_damaged_entries_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError, match="cache entry"):
        decode(blob)


def test_memory_layer_evicts_the_least_recently_used_and_expires() -> None:
    clock = Clock()
    layer = MemoryLayer(max_entries=2, clock=clock)
    layer.put("a", b"A", ttl=10)
    layer.put("b", b"B", ttl=10)
    assert layer.get("a") == b"A"  # a is now the most recent
    layer.put("c", b"C", ttl=10)

    assert layer.get("b") is None
    assert (layer.get("a"), layer.get("c")) == (b"A", b"C")
    clock.now += 10
    assert layer.get("a") is None
    assert len(layer) == 1


def test_what_gets_a_key(make_settings: SettingsFactory) -> None:
    cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}))

    def key(body: ChatCompletionRequest, caller: str = "k1") -> str | None:
        return cache_key(cache, body, caller_id=caller)

    base = key(request())
    assert base is not None
    assert key(request(stream=True, user="u", metadata={"x": "y"})) == base
    assert key(request(), caller="k2") != base
    assert key(request(max_tokens=5)) != base
    assert key(request(seed=1)) != key(request(seed=2))
    assert key(request(messages=[{"role": "user", "content": "hello"}])) != base
    assert key(request(temperature=0.5)) is None
    assert key(request(temperature=None)) is None
    assert key(request(tools=[{"type": "function", "function": {"name": "f"}}])) is None


def test_version_and_sharing_settings_change_keys(make_settings: SettingsFactory) -> None:
    def key(**settings: Any) -> str | None:
        cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}, **settings))
        return cache_key(cache, request(temperature=0.3), caller_id="k1")

    assert key() is None
    assert key(cache_any_temperature=True) is not None
    assert key(cache_any_temperature=True) != key(cache_any_temperature=True, cache_version="2")
    shared = ResponseCache(
        make_settings(agent_models={"m": ["offline"]}, cache_shared_across_keys=True)
    )
    assert cache_key(shared, request(), caller_id="a") == cache_key(
        shared, request(), caller_id="b"
    )
    assert key(cache_enabled=False, cache_any_temperature=True) is None


async def test_a_request_on_a_thread_is_never_cached(make_settings: SettingsFactory) -> None:
    """Metadata naming a thread makes the run stateful, and a stateful run has no cache key."""
    cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}))
    body = request(metadata={"thread_id": "t"})
    thread = thread_of("k1", {}, metadata=body.metadata)
    assert thread is not None
    assert thread.client_id == "t"
    stateful = await lookup(cache, body, {}, stateful=thread is not None, caller_id="k1")
    stateless = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    assert (stateful.key, stateful.headers) == (None, {})
    assert stateless.key is not None
    assert stateless.headers == {"x-cache": "miss"}


# --- CacheLookup: a hit replaces the run, a miss stores its answer ----------------------------


def ran(text: str, *, outcomes: tuple[str, ...] = ("ok",)) -> dict[str, Any]:
    """A run's output as the graph returns it."""
    return {
        "messages": [HumanMessage("hi", id=client_message_id()), AIMessage(text)],
        "finish_reason": "length",
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        "attempts": [{"provider": f"p{i}", "outcome": o} for i, o in enumerate(outcomes)],
    }


class Runs:
    def __init__(self, output: dict[str, Any]) -> None:
        self.result = TurnResult.of(output)
        self.count = 0

    async def complete(self) -> TurnResult:
        self.count += 1
        return self.result

    async def stream(self) -> AsyncGenerator[StreamEvent, None]:
        self.count += 1
        yield TextDelta(self.result.text)
        yield TurnDone(self.result)


async def test_a_miss_stores_the_answer_and_the_same_request_is_then_a_hit(
    make_settings: SettingsFactory,
) -> None:
    cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}))
    runs = Runs(ran("Hello there."))

    miss = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    assert (miss.hit, miss.headers) == (False, {"x-cache": "miss"})
    assert await miss.complete(runs.complete) is runs.result

    hit = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    result = await hit.complete(runs.complete)
    assert (hit.hit, hit.headers, runs.count) == (True, {"x-cache": "hit"}, 1)
    assert result.text == "Hello there."
    assert (result.finish_reason, result.usage) == ("length", runs.result.usage)
    other_key = await lookup(cache, request(), {}, stateful=False, caller_id="k2")
    assert not other_key.hit


async def test_a_streamed_miss_is_stored_at_its_end_and_a_hit_streams_it_at_once(
    make_settings: SettingsFactory,
) -> None:
    cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}))
    runs = Runs(ran("Streamed answer."))

    miss = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    passed = [event async for event in miss.stream(runs.stream)]
    assert [type(e) for e in passed] == [TextDelta, TurnDone]

    hit = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    replayed = [event async for event in hit.stream(runs.stream)]
    assert runs.count == 1
    assert replayed[0] == TextDelta("Streamed answer.")
    assert isinstance(replayed[1], TurnDone)
    assert replayed[1].result.finish_reason == "length"


async def test_an_answer_from_a_fallback_provider_is_not_stored(
    make_settings: SettingsFactory,
) -> None:
    cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}))
    runs = Runs(ran("From the second provider.", outcomes=("error", "ok")))
    await (await lookup(cache, request(), {}, stateful=False, caller_id="k1")).complete(
        runs.complete
    )
    again = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    assert not again.hit
    assert cache.stats()["events"]["request"]["fallback"] == 1


async def test_cache_control_no_store_skips_the_cache_and_no_cache_only_the_read(
    make_settings: SettingsFactory,
) -> None:
    cache = ResponseCache(make_settings(agent_models={"m": ["offline"]}))
    await (await lookup(cache, request(), {}, stateful=False, caller_id="k1")).complete(
        Runs(ran("cached")).complete
    )
    fresh = Runs(ran("fresh"))

    no_store = await lookup(
        cache, request(), {"cache-control": "no-store"}, stateful=False, caller_id="k1"
    )
    assert (no_store.key, no_store.headers) == (None, {})
    assert (await no_store.complete(fresh.complete)).text == "fresh"

    no_cache = await lookup(
        cache, request(), {"cache-control": "max-age=0, No-Cache"}, stateful=False, caller_id="k1"
    )
    assert (no_cache.hit, no_cache.headers) == (False, {"x-cache": "bypass"})
    assert (await no_cache.complete(fresh.complete)).text == "fresh"
    # …and what it ran replaced the stored answer.
    later = await lookup(cache, request(), {}, stateful=False, caller_id="k1")
    assert (await later.complete(fresh.complete)).text == "fresh"
    assert fresh.count == 2


async def test_with_shared_answers_one_built_from_the_callers_own_data_stays_the_callers(
    make_settings: SettingsFactory,
) -> None:
    cache = ResponseCache(
        make_settings(agent_models={"m": ["offline"]}, cache_shared_across_keys=True)
    )
    private = Runs({**ran("From k1's documents."), "caller_scoped": True})
    await (await lookup(cache, request(), {}, stateful=False, caller_id="k1")).complete(
        private.complete
    )
    assert not (await lookup(cache, request(), {}, stateful=False, caller_id="k2")).hit
    assert (await lookup(cache, request(), {}, stateful=False, caller_id="k1")).hit

    common = Runs({**ran("From shared data."), "caller_scoped": False})
    ask = request(messages=[{"role": "user", "content": "common"}])
    await (await lookup(cache, ask, {}, stateful=False, caller_id="k1")).complete(common.complete)
    assert (await lookup(cache, ask, {}, stateful=False, caller_id="k2")).hit
    # A caller with data of its own does not read shared entries: they could be wrong for it.
    own = await lookup(cache, ask, {}, stateful=False, caller_id="k3", own_data=True)
    assert not own.hit
