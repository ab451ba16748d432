"""The response cache over real HTTP, real Redis and the fake provider."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
import redis

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.redis_server import RedisProcess
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply
from tests.helpers import chat_body

pytestmark = pytest.mark.redis

Serve = Callable[[Settings], ServedApp]

QUESTION = chat_body(("user", "what is six times seven?"), model="m", temperature=0)


def cached_settings(
    make_settings: SettingsFactory, upstream: FakeUpstream, **extra: Any
) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
        **extra,
    )


def ask(app: ServedApp, body: dict[str, Any] = QUESTION, **kwargs: Any) -> httpx.Response:
    response = httpx.post(f"{app.url}/v1/chat/completions", json=body, timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    return response


def answer(response: httpx.Response) -> str:
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def stats(app: ServedApp, **kwargs: Any) -> dict[str, Any]:
    response = httpx.get(f"{app.url}/admin/cache/stats", **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_repeated_stateless_request_is_answered_from_the_cache(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    primary.script(Reply("forty-two"))
    settings = cached_settings(
        make_settings, primary, redis_url=redis_url, redis_prefix=redis_prefix
    )
    app = serve(settings)

    first = ask(app)
    calls = len(primary.requests)
    second = ask(app)

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert answer(first) == answer(second) == "forty-two"
    assert second.json()["id"] != first.json()["id"]  # a new completion, the same answer
    assert len(primary.requests) == calls  # the hit never reached the provider
    assert stats(app)["events"]["memory"]["hit"] == 1

    # A second replica on the same Redis finds it there; a stream is replayed as SSE.
    other = serve(settings)
    client = openai.OpenAI(base_url=f"{other.url}/v1", api_key="unused", max_retries=0)
    chunks = client.chat.completions.create(
        model="m", messages=QUESTION["messages"], temperature=0, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == "forty-two"
    assert len(primary.requests) == calls
    assert stats(other)["events"]["redis"]["hit"] == 1


def test_a_streamed_answer_is_stored_and_served_to_a_json_request(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    primary.script(Reply("streamed once", chunk_delay=0.01))
    app = serve(cached_settings(make_settings, primary))  # no Redis: the in-process layer

    with httpx.stream(
        "POST", f"{app.url}/v1/chat/completions", json={**QUESTION, "stream": True}
    ) as response:
        assert response.headers["x-cache"] == "miss"
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    calls = len(primary.requests)

    hit = ask(app)
    assert hit.headers["x-cache"] == "hit"
    assert answer(hit) == "streamed once"
    assert len(primary.requests) == calls


def test_requests_on_a_thread_or_with_temperature_are_never_cached(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(cached_settings(make_settings, primary))

    for _ in range(2):
        response = ask(app, headers={"x-thread-id": "t-1"})
        assert "x-cache" not in response.headers
    warm = {**QUESTION, "temperature": 0.7}
    for _ in range(2):
        assert "x-cache" not in ask(app, warm).headers
    with_tools = {
        **QUESTION,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    assert "x-cache" not in ask(app, with_tools).headers

    assert stats(app)["events"].get("memory", {}).get("hit", 0) == 0
    # Thread turns, warm and tool requests all reached the provider every time.
    assert len([r for r in primary.requests if r.path.endswith("/chat/completions")]) >= 5


def test_large_answers_are_compressed_in_redis_and_read_back_intact(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    text = " ".join(f"word{i % 50}" for i in range(600))
    primary.script(Reply(text))
    settings = cached_settings(
        make_settings,
        primary,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        cache_compress_min_bytes=256,
        cache_max_entries=0,  # Redis only: the hit must come from the compressed value
    )
    app = serve(settings)

    ask(app)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}:cache:*"))
        assert len(keys) == 1
        stored = client.get(keys[0])
    finally:
        client.close()
    assert isinstance(stored, bytes)
    assert stored[:1] == b"z"
    assert len(stored) < len(text) // 2

    hit = ask(app)
    assert hit.headers["x-cache"] == "hit"
    assert answer(hit) == text


def test_entries_expire_after_the_ttl(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    primary.script(Reply("first"), Reply("second"))
    app = serve(
        cached_settings(
            make_settings,
            primary,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            cache_ttl_seconds=0.5,
        )
    )

    assert answer(ask(app)) == "first"
    assert ask(app).headers["x-cache"] == "hit"
    time.sleep(0.7)
    late = ask(app)

    assert late.headers["x-cache"] == "miss"
    assert answer(late) == "second"


def test_clearing_invalidates_every_replica_and_needs_a_key(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    primary.script(Reply("old"), Reply("new"))
    settings = cached_settings(
        make_settings,
        primary,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        api_keys=["sk-admin"],
        cache_shared_across_keys=True,
    )
    auth = {"authorization": "Bearer sk-admin"}
    a, b = serve(settings), serve(settings)
    assert answer(ask(a, headers=auth)) == "old"
    assert ask(b, headers=auth).headers["x-cache"] == "hit"  # now also in b's memory layer

    assert httpx.post(f"{a.url}/admin/cache/clear").status_code == 401
    cleared = httpx.post(f"{a.url}/admin/cache/clear", headers=auth)
    assert cleared.status_code == 200
    assert cleared.json()["cleared"]["redis"] == 1
    time.sleep(1.1)  # replicas re-read the generation at most once a second

    fresh = ask(b, headers=auth)
    assert fresh.headers["x-cache"] == "miss"
    assert answer(fresh) == "new"


def test_a_version_bump_misses_old_entries(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    primary.script(Reply("v1 answer"), Reply("v2 answer"))
    common = {"redis_url": redis_url, "redis_prefix": redis_prefix}
    v1 = serve(cached_settings(make_settings, primary, cache_version="1", **common))
    v2 = serve(cached_settings(make_settings, primary, cache_version="2", **common))

    assert answer(ask(v1)) == "v1 answer"
    bumped = ask(v2)

    assert bumped.headers["x-cache"] == "miss"
    assert answer(bumped) == "v2 answer"


def test_answers_are_not_shared_between_api_keys_by_default(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    primary.script(Reply("for alice"), Reply("for bob"))
    app = serve(cached_settings(make_settings, primary, api_keys=["sk-alice", "sk-bob"]))

    assert answer(ask(app, headers={"authorization": "Bearer sk-alice"})) == "for alice"
    bob = ask(app, headers={"authorization": "Bearer sk-bob"})

    assert bob.headers["x-cache"] == "miss"
    assert answer(bob) == "for bob"


def test_no_cache_skips_the_lookup_but_refreshes_the_entry(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    primary.script(Reply("stale"), Reply("fresh"), Reply("unstored"))
    app = serve(cached_settings(make_settings, primary))

    assert answer(ask(app)) == "stale"
    refreshed = ask(app, headers={"cache-control": "no-cache"})
    assert refreshed.headers["x-cache"] == "bypass"
    assert answer(refreshed) == "fresh"
    assert answer(ask(app)) == "fresh"  # the refreshed answer replaced the old one

    unstored = ask(app, headers={"cache-control": "no-store"})
    assert answer(unstored) == "unstored"
    assert answer(ask(app)) == "fresh"  # no-store wrote nothing


def test_requests_keep_working_while_redis_is_down_and_use_it_again_after(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, own_redis: RedisProcess
) -> None:
    app = serve(
        cached_settings(
            make_settings,
            primary,
            redis_url=own_redis.url,
            redis_prefix="outage",
            redis_retry_seconds=0.1,
            cache_max_entries=0,  # Redis is the only layer: its outage is visible
        )
    )
    ask(app)
    assert ask(app).headers["x-cache"] == "hit"

    own_redis.stop()
    down = {**QUESTION, "messages": [{"role": "user", "content": "while down"}]}
    calls = len(primary.requests)
    started = time.perf_counter()
    for _ in range(3):
        assert answer(ask(app, down)) == "ok"
        time.sleep(0.15)
    assert time.perf_counter() - started < 5
    assert len(primary.requests) == calls + 3  # served by the provider, uncached
    during = stats(app)
    assert during["events"]["redis"]["error"] >= 3
    assert during["redis"]["healthy"] is False

    own_redis.start()
    time.sleep(0.2)  # past the back-off
    again = {**QUESTION, "messages": [{"role": "user", "content": "after"}]}
    assert ask(app, again).headers["x-cache"] == "miss"
    assert ask(app, again).headers["x-cache"] == "hit"
    after = stats(app)
    assert after["redis"]["healthy"] is True
    assert after["events"]["redis"]["hit"] == during["events"]["redis"]["hit"] + 1


def test_stats_count_by_layer(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(cached_settings(make_settings, primary))
    ask(app)
    ask(app)

    body = stats(app)
    assert body["events"]["memory"] == {"hit": 1, "miss": 1, "store": 1}
    assert body["memory_entries"] == 1
    assert body["redis"] is None
    json.dumps(body)  # plain JSON for dashboards


def test_an_answer_from_a_fallback_provider_is_served_but_not_kept(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-main", "openai-compatible:gpt-spare"]},
            openai_base_url=primary.openai_base_url,
            openai_compatible_base_url=secondary.openai_base_url,
            provider_max_retries=0,
        )
    )
    primary.script(Fault.server_error(), Reply("from the main provider"))
    secondary.script(Reply("from the spare"))

    assert answer(ask(app)) == "from the spare"
    again = ask(app)  # the main provider is back: it answers, and that answer is kept

    assert again.headers["x-cache"] == "miss"
    assert answer(again) == "from the main provider"
    assert ask(app).headers["x-cache"] == "hit"
    assert stats(app)["events"]["request"]["fallback"] == 1


def test_a_redis_that_never_answers_costs_a_short_timeout_not_a_stall(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    # A socket that listens but never answers: connections succeed, commands hang.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        app = serve(
            cached_settings(
                make_settings,
                primary,
                redis_url=f"redis://127.0.0.1:{port}/0",
                redis_prefix="silent",
                redis_timeout=0.2,
                redis_retry_seconds=30,
            )
        )
        durations = []
        for i in range(4):
            body = {**QUESTION, "messages": [{"role": "user", "content": f"q{i}"}]}
            started = time.perf_counter()
            assert answer(ask(app, body)) == "ok"
            durations.append(time.perf_counter() - started)

    # The first request pays one short timeout; then Redis is left alone for the back-off
    # (one error in all: the later requests did not even try it).
    assert stats(app)["events"]["redis"]["error"] == 1
    assert 0.2 <= durations[0] < 2
    assert max(durations[1:]) < 1
