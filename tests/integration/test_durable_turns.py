"""An acknowledged turn is durable and its thread free: the next turn may come at once.

The answer's last byte (the JSON body, or the final chunk and `[DONE]`) is written only after
the run has finished, its last checkpoint is committed and the thread lock is released. So a
client that sends the next turn the instant it has read `[DONE]` never gets `409`, and a
`kill -9` right after an answer loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.service_process import ServiceProcess
from tests.fakes.upstream import FakeUpstream, Reply

Spawn = Callable[[Settings], ServiceProcess]
THREAD = "durable-thread"


def body(text: str, *, stream: bool) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}


def streamed_turn(client: httpx.Client, url: str, text: str, then: Callable[[], None]) -> str:
    """Stream a turn; call `then` the instant `[DONE]` is read, before the response closes."""
    pieces: list[str] = []
    with client.stream(
        "POST", f"{url}/v1/chat/completions", json=body(text, stream=True)
    ) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line:
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                then()
                break
            chunk = json.loads(data)
            assert "error" not in chunk, chunk
            if chunk["choices"]:
                pieces.append(chunk["choices"][0]["delta"].get("content") or "")
    return "".join(pieces)


def plain_turn(client: httpx.Client, url: str, text: str) -> str:
    response = client.post(f"{url}/v1/chat/completions", json=body(text, stream=False))
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    "store",
    [
        "sqlite",
        # As operators run it: PostgreSQL checkpoints and the thread lock shared through Redis
        # (its release is a round trip, the window in which `[DONE]` once came too early).
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ],
)
def test_back_to_back_turns_then_kill_9_lose_nothing(
    make_settings: SettingsFactory,
    serve_process: Spawn,
    primary: FakeUpstream,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    extra: dict[str, Any] = {}
    if store == "postgres+redis":
        extra["database_url"] = request.getfixturevalue("postgres_url")
        extra["redis_url"] = request.getfixturevalue("redis_url")
        extra["redis_prefix"] = request.getfixturevalue("redis_prefix")
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
        **extra,
    )
    primary.script(*(Reply(f"answer {n}") for n in range(1, 7)))
    service = serve_process(settings)
    headers = {"X-Thread-Id": THREAD}
    answers: dict[int, str] = {}

    with httpx.Client(headers=headers, timeout=30) as client:

        def turn(n: int) -> None:
            """Turn n; an odd turn streams and sends turn n + 1 the instant it reads [DONE]."""
            if n > 5:
                return
            if n % 2 == 1:
                answers[n] = streamed_turn(client, service.url, f"prompt {n}", lambda: turn(n + 1))
            else:
                answers[n] = plain_turn(client, service.url, f"prompt {n}")
                turn(n + 1)

        turn(1)
        # The fifth answer has been read: kill -9 the replica at once, and start another.
        service.kill()

    assert answers == {n: f"answer {n}" for n in range(1, 6)}
    restarted = serve_process(settings)
    with httpx.Client(headers=headers, timeout=30) as client:
        assert plain_turn(client, restarted.url, "prompt 6") == "answer 6"

    sent = [(m["role"], m["content"]) for m in (primary.requests[-1].body or {})["messages"]]
    expected: list[tuple[str, str]] = []
    for n in range(1, 6):
        expected += [("user", f"prompt {n}"), ("assistant", f"answer {n}")]
    expected.append(("user", "prompt 6"))
    assert [m for m in sent if m[0] != "system"] == expected
