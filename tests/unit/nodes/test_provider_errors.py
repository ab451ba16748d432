"""Error classification of the exceptions the provider clients raise, and cooldowns."""

from __future__ import annotations

import json

import httpx
import httpx2
import ollama

from graph.errors import ErrorKind
from nodes.providers.cooldown import InProcessCooldowns
from nodes.providers.errors import classify


def test_transport_errors_of_both_http_stacks() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/v1")
    failure = classify(httpx.ConnectError("refused", request=request))
    assert failure is not None
    assert failure.kind is ErrorKind.CONNECTION
    failure = classify(httpx2.RemoteProtocolError("peer closed connection"))
    assert failure is not None
    assert failure.kind is ErrorKind.CONNECTION
    failure = classify(httpx2.ReadTimeout("slow"))
    assert failure is not None
    assert failure.kind is ErrorKind.TIMEOUT


def test_ollama_status_errors() -> None:
    busy = classify(ollama.ResponseError("overloaded", 503))
    assert busy is not None
    assert busy.kind is ErrorKind.SERVER_ERROR
    missing = classify(ollama.ResponseError("model 'x' not found", 404))
    assert missing is not None
    assert missing.kind is ErrorKind.BAD_REQUEST


def test_malformed_json_and_foreign_errors() -> None:
    try:
        json.loads("{not json")
    except json.JSONDecodeError as error:
        failure = classify(error)
        assert failure is not None
        assert failure.kind is ErrorKind.MALFORMED
    assert classify(KeyError("not a provider failure")) is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_cooldown_opens_after_the_threshold_and_half_opens_after_the_wait() -> None:
    clock = Clock()
    breaker = InProcessCooldowns(threshold=2, cooldown=10, clock=clock)

    assert await breaker.record_failure("p") is False
    assert await breaker.is_cooling("p") is False
    assert await breaker.record_failure("p") is True
    assert await breaker.is_cooling("p") is True
    assert breaker.cooling() == ["p"]

    clock.now = 10.5
    assert await breaker.is_cooling("p") is False  # one trial call is let through
    assert await breaker.record_failure("p") is True  # …and one failure closes it again
    assert await breaker.is_cooling("p") is True

    clock.now = 21
    assert await breaker.is_cooling("p") is False
    await breaker.record_success("p")
    assert await breaker.record_failure("p") is False  # the count started over
