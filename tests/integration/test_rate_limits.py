"""Requests per minute per API key, as OpenAI clients see them."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.redis_server import RedisProcess
from tests.fakes.server_thread import ServedApp
from tests.fakes.service_process import ServiceProcess
from tests.fakes.upstream import FakeUpstream

Serve = Callable[[Settings], ServedApp]

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def limited(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: object) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        api_keys=["sk-one", "sk-two"],
        rate_limit_rpm=2,
        cache_enabled=False,
        **extra,
    )


def clear_of_a_minute_boundary(margin: float = 20.0) -> None:
    """Start a few requests' worth of test well inside one minute.

    The window is the two-bucket approximation, which by design lets one more request in
    just after a minute boundary when the limit is as small as the tests' 2. A test that
    checks an exact count must not straddle a boundary: near the end of a minute it waits
    for the next one to begin (at most `margin` seconds).
    """
    into_minute = time.time() % 60
    if into_minute > 60 - margin:
        time.sleep(60 - into_minute + 0.5)  # a wall-clock boundary; nothing to poll


def client(app: ServedApp | ServiceProcess, key: str = "sk-one") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0)


def test_over_the_limit_the_sdk_gets_a_rate_limit_error_with_retry_after(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(limited(make_settings, primary))  # no Redis: counted in-process
    sdk = client(app)
    clear_of_a_minute_boundary()

    first = sdk.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    sdk.chat.completions.create(model="m", messages=MESSAGES)
    calls = len(primary.requests)
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="m", messages=MESSAGES)

    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "rate_limit_error"
    assert 1 <= int(error.response.headers["retry-after"]) <= 120
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(primary.requests) == calls  # refused before any work
    # Another key has its own budget.
    assert client(app, "sk-two").chat.completions.create(model="m", messages=MESSAGES).choices


@pytest.mark.redis
def test_replicas_sharing_redis_share_the_budget(
    make_settings: SettingsFactory,
    serve_process: Callable[[Settings], ServiceProcess],
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    # A generous Redis timeout: on a loaded CI machine the first script call of a fresh
    # process can exceed the default 0.25 s, and that replica would then count alone.
    settings = limited(
        make_settings, primary, redis_url=redis_url, redis_prefix=redis_prefix, redis_timeout=5.0
    )
    a, b = serve_process(settings), serve_process(settings)  # two real processes

    clear_of_a_minute_boundary()
    client(a).chat.completions.create(model="m", messages=MESSAGES)
    client(b).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        client(a).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        client(b).chat.completions.create(model="m", messages=MESSAGES)


@pytest.mark.redis
def test_without_redis_each_replica_counts_alone_and_errors_are_counted(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, own_redis: RedisProcess
) -> None:
    settings = limited(
        make_settings,
        primary,
        redis_url=own_redis.url,
        redis_prefix="limits",
        redis_retry_seconds=0,
    )
    app = serve(settings)
    clear_of_a_minute_boundary()
    client(app).chat.completions.create(model="m", messages=MESSAGES)
    own_redis.stop()

    # Redis is gone: requests are still served, counted by this replica alone.
    client(app).chat.completions.create(model="m", messages=MESSAGES)
    client(app).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        client(app).chat.completions.create(model="m", messages=MESSAGES)
    ready = httpx.get(f"{app.url}/ready").json()
    assert "rate-limits-in-process" in ready["degraded"]
