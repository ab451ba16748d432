"""Conversation memory on a real checkpointer: SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.helpers import chat_body, thread_messages

Serve = Callable[[Settings], ServedApp]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Any:
    """Settings on each checkpointer; PostgreSQL gets a fresh database."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")

        def on_postgres(**overrides: Any) -> Settings:
            return make_settings(database_url=url, **overrides)

        return on_postgres
    return make_settings


def seen_by_model(upstream: FakeUpstream, index: int) -> list[tuple[str, str]]:
    body = upstream.requests[index].body or {}
    return [(m["role"], m.get("content") or "") for m in body["messages"] if m["role"] != "system"]


def post(app: ServedApp, thread: str, *messages: tuple[str, str]) -> str:
    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(*messages, model="m"),
        headers={"X-Thread-Id": thread},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


async def test_a_thread_remembers_and_survives_a_restart(
    store_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = store_settings(
        agent_models={"m": ["openai:gpt-test"]}, openai_base_url=primary.openai_base_url
    )
    primary.script(Reply("Hello Ada."), Reply("Your name is Ada."), Reply("Still Ada."))

    first = serve(settings)
    assert post(first, "memory", ("user", "My name is Ada.")) == "Hello Ada."
    # A client that sends only the new message: the server supplies the history.
    assert post(first, "memory", ("user", "What is my name?")) == "Your name is Ada."
    assert seen_by_model(primary, 1) == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
    ]
    first.stop()

    # A new app instance on the same store continues the thread; this client resends it all.
    second = serve(settings)
    history = [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
        ("assistant", "Your name is Ada."),
        ("user", "Still?"),
    ]
    assert post(second, "memory", *history) == "Still Ada."
    assert seen_by_model(primary, 2) == history  # nothing duplicated

    stored = await thread_messages(settings, "memory")
    assert [m.content for m in stored] == [content for _, content in history] + ["Still Ada."]


def test_threads_are_separate_and_stateless_runs_store_nothing(
    store_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = store_settings(
        agent_models={"m": ["openai:gpt-test"]}, openai_base_url=primary.openai_base_url
    )
    primary.script(Reply("one"), Reply("two"), Reply("three"))
    app = serve(settings)

    post(app, "a", ("user", "first on a"))
    post(app, "b", ("user", "first on b"))
    response = httpx.post(
        f"{app.url}/v1/chat/completions", json=chat_body(("user", "no thread"), model="m")
    )

    assert response.status_code == 200
    assert "x-thread-id" not in response.headers
    assert seen_by_model(primary, 1) == [("user", "first on b")]
    assert seen_by_model(primary, 2) == [("user", "no thread")]
