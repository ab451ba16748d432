"""Two replicas (two `python -m server` processes) sharing PostgreSQL and Redis act as one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.service_process import ServiceProcess
from tests.fakes.upstream import FakeUpstream, Fault, Reply
from tests.helpers import chat_body

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

Spawn = Callable[[Settings], ServiceProcess]


def completions(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return [r.body or {} for r in upstream.requests if r.path.endswith("/chat/completions")]


def turn(app: ServiceProcess, thread: str, *messages: tuple[str, str]) -> str:
    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(*messages, model="m"),
        headers={"x-thread-id": thread},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def test_a_cooldown_on_one_replica_is_honoured_by_the_other_which_also_remembers_the_thread(
    make_settings: SettingsFactory,
    serve_process: Spawn,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-main", "openai-compatible:gpt-spare"]},
        openai_base_url=primary.openai_base_url,
        openai_compatible_base_url=secondary.openai_base_url,
        provider_max_retries=0,
        provider_cooldown_failures=1,
        provider_cooldown_seconds=60,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    a, b = serve_process(settings), serve_process(settings)
    primary.script(Fault.server_error())
    secondary.script(Reply("turn one answer"), Reply("turn two answer"))

    assert turn(a, "shared", ("user", "turn one")) == "turn one answer"
    primary_calls = len(completions(primary))
    assert primary_calls >= 1  # A tried the main provider, which failed and cooled down

    history = [("user", "turn one"), ("assistant", "turn one answer"), ("user", "turn two")]
    assert turn(b, "shared", *history) == "turn two answer"

    assert len(completions(primary)) == primary_calls  # B skipped the cooled-down provider
    seen = [m.get("content") for m in completions(secondary)[-1]["messages"]]
    assert "turn one" in seen
    assert "turn one answer" in seen  # B continued the thread A wrote
    ready = httpx.get(f"{b.url}/admin/ready").json()
    assert ready["checks"]["providers"]["cooling"] == ["openai:gpt-main"]


def test_a_success_on_one_replica_ends_the_cooldown_for_all(
    make_settings: SettingsFactory,
    serve_process: Spawn,
    primary: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-main"]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
        provider_cooldown_failures=2,
        provider_cooldown_seconds=60,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    a, b = serve_process(settings), serve_process(settings)
    primary.script(Fault.server_error(), Reply("fine"), Fault.server_error(), Reply("fine"))

    def ask(app: ServiceProcess) -> int:
        return httpx.post(
            f"{app.url}/v1/chat/completions", json=chat_body(("user", "hi"), model="m")
        ).status_code

    # One failure on each replica would reach the threshold of 2 if the count were
    # not reset by the success in between: the failures are consecutive across replicas.
    assert [ask(a), ask(b), ask(b), ask(a)] == [502, 200, 502, 200]
    assert httpx.get(f"{a.url}/admin/ready").json()["checks"]["providers"]["cooling"] == []


def test_a_thread_busy_on_one_replica_is_409_on_the_other(
    make_settings: SettingsFactory,
    serve_process: Spawn,
    primary: FakeUpstream,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-main"]},
        openai_base_url=primary.openai_base_url,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
    )
    a, b = serve_process(settings), serve_process(settings)
    primary.script(Reply("slow " * 20, chunk_delay=0.05), Reply("after"))
    body = chat_body(("user", "first"), model="m", stream=True)
    with httpx.stream(
        "POST",
        f"{a.url}/v1/chat/completions",
        json=body,
        headers={"x-thread-id": "shared"},
        timeout=10,
    ) as streaming:
        lines = streaming.iter_lines()
        next(lines)  # A is running the thread now
        busy = httpx.post(
            f"{b.url}/v1/chat/completions",
            json=chat_body(("user", "second"), model="m"),
            headers={"x-thread-id": "shared"},
        )
        rest = list(lines)
    assert "data: [DONE]" in rest
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "thread_busy"
    # Released when A's stream ended: B can continue the same thread.
    assert turn(b, "shared", ("user", "second")) == "after"
