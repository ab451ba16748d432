"""Error classification of the exceptions the provider clients raise, and cooldowns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest

from graph.errors import ErrorKind
from nodes.providers.cooldown import InProcessCooldowns
from nodes.providers.errors import classify, provider_exceptions

ROOT = Path(__file__).resolve().parents[3]
REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(sdk: str, status: int, body: object, retry_after: str | None = None) -> Exception:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    response = httpx2.Response(status, headers=headers, json=body, request=REQUEST)
    module = {"openai": openai, "anthropic": anthropic}[sdk]
    message = f"Error code: {status} - {body}"  # what the SDKs write
    error: Exception = module.APIStatusError(message, response=response, body=body)
    return error


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_status_errors_of_both_sdks(sdk: str) -> None:
    limited = classify(status_error(sdk, 429, {"error": {"message": "slow down"}}, "2.5"))
    assert limited is not None
    assert limited.kind is ErrorKind.RATE_LIMIT
    assert limited.retry_after == 2.5
    assert limited.message == "slow down"
    denied = classify(status_error(sdk, 401, {"error": {"message": "bad key"}}))
    assert denied is not None
    assert denied.kind is ErrorKind.AUTH
    too_long = classify(status_error(sdk, 400, {"error": {"message": "prompt is too long"}}))
    assert too_long is not None
    assert too_long.kind is ErrorKind.CONTEXT_LENGTH


@pytest.mark.parametrize("sdk", [openai, anthropic], ids=["openai", "anthropic"])
def test_timeouts_and_connection_errors_of_both_sdks(sdk: ModuleType) -> None:
    timeout = classify(sdk.APITimeoutError(request=REQUEST))
    assert timeout is not None
    assert timeout.kind is ErrorKind.TIMEOUT  # not CONNECTION, its base class
    refused = classify(sdk.APIConnectionError(request=REQUEST))
    assert refused is not None
    assert refused.kind is ErrorKind.CONNECTION


def test_the_fallback_catches_every_loaded_sdk() -> None:
    caught = provider_exceptions()
    for base in (
        openai.OpenAIError,
        anthropic.AnthropicError,
        ollama.ResponseError,
        httpx.HTTPError,
        httpx2.HTTPError,
        json.JSONDecodeError,
        TimeoutError,
    ):
        assert base in caught
    assert not issubclass(KeyError, caught)


_UNLOADED = """
import json, sys
from nodes.providers.errors import classify, provider_exceptions
from nodes.providers.registry import provider_kinds

provider_kinds()  # every kind declared, none of their SDKs imported
before = sorted(t.__module__ for t in provider_exceptions())
unclassified = classify(KeyError("x")) is None
loaded_by_checks = "anthropic" in sys.modules

import anthropic, httpx2

error = anthropic.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1"))
print(json.dumps({
    "before": before,
    "unclassified": unclassified,
    "loaded_by_checks": loaded_by_checks,
    "caught_after": isinstance(error, provider_exceptions()),
    "kind_after": classify(error).kind.value,
}))
"""


def test_an_sdk_is_looked_at_only_once_it_is_loaded() -> None:
    """In a fresh interpreter (this one has every SDK): the checks import no SDK, and an SDK
    imported later (its first model built) is caught and classified from then on."""
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", _UNLOADED],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert not any(
        module.startswith(("anthropic", "openai", "ollama")) for module in seen["before"]
    )
    assert seen["unclassified"] is True
    assert seen["loaded_by_checks"] is False
    assert seen["caught_after"] is True
    assert seen["kind_after"] == "connection"


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
