"""The `/v1` routes in-process (ASGI, no server): OpenAI-shaped errors, SSE, threads, locks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from server.app import create_app
from server.wiring.state import AppState
from tests.conftest import SettingsFactory
from tests.helpers import WEATHER_TOOL, chat_body

ASK = ("user", "What is 6*7?")


class Served:
    def __init__(self, client: httpx.AsyncClient, state: AppState) -> None:
        self.client = client
        self.state = state

    async def chat(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post("/v1/chat/completions", json=body, headers=headers)


@asynccontextmanager
async def served(make_settings: SettingsFactory, **overrides: Any) -> AsyncIterator[Served]:
    """The app with its lifespan run, called through httpx's ASGI transport."""
    app = create_app(make_settings(**overrides))
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)  # what a server does with the lifespan's state
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Served(client, state["agent"])


def sse(response: httpx.Response) -> list[Any]:
    frames = [f for f in response.text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames)
    return [f[6:] if f[6:] == "[DONE]" else json.loads(f[6:]) for f in frames]


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_refusals_are_openai_shaped_with_the_right_status(
    make_settings: SettingsFactory,
) -> None:
    async with served(make_settings, max_messages=2) as app:
        unknown = await app.chat(chat_body(ASK, model="gpt-nope"))
        two = await app.chat(chat_body(ASK, n=2))
        many = await app.chat(chat_body(ASK, ASK, ASK))
        nothing = await app.chat(chat_body(ASK, ("assistant", "42")), **{"X-Thread-Id": "t"})
        malformed = await app.chat({"model": "offline", "messages": []})

    assert unknown.status_code == 404
    assert (error_of(unknown)["code"], error_of(unknown)["param"]) == ("model_not_found", "model")
    assert (two.status_code, error_of(two)["param"]) == (400, "n")
    assert (many.status_code, error_of(many)["code"]) == (400, "too_many_messages")
    assert (nothing.status_code, error_of(nothing)["param"]) == (400, "messages")
    assert (malformed.status_code, error_of(malformed)["param"]) == (400, "messages")


async def test_a_streamed_answer_is_framed_as_openai_s_sse(make_settings: SettingsFactory) -> None:
    body = chat_body(ASK, stream=True, stream_options={"include_usage": True})
    async with served(make_settings) as app:
        response = await app.chat(body, **{"X-Thread-Id": "s1"})
        stored = await app.state.graph.aget_state({"configurable": {"thread_id": "s1"}})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert (response.headers["x-thread-id"], response.headers["cache-control"]) == (
        "s1",
        "no-cache",
    )
    frames = sse(response)
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "6*7 = 42"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    usage = stored.values["usage"]
    assert chunks[-1]["usage"]["total_tokens"] == usage["total_tokens"] > 0
    assert len({c["id"] for c in chunks}) == 1


async def test_client_tools_pause_as_tool_calls_and_the_results_resume_the_run(
    make_settings: SettingsFactory,
) -> None:
    history: list[dict[str, Any]] = [{"role": "user", "content": "use get_weather city=Oslo"}]

    def body() -> dict[str, Any]:
        return {"model": "offline", "messages": history, "tools": [WEATHER_TOOL]}

    async with served(make_settings) as app:
        paused = await app.chat(body(), **{"X-Thread-Id": "w1"})
        message = paused.json()["choices"][0]["message"]
        history += [
            {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]},
            {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "hail"},
        ]
        answered = await app.chat(body(), **{"X-Thread-Id": "w1"})

    assert paused.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_weather"]
    assert answered.status_code == 200
    assert answered.json()["choices"][0]["message"]["content"] == "hail"


async def test_a_busy_thread_is_a_409_and_other_threads_are_served(
    make_settings: SettingsFactory,
) -> None:
    async with served(make_settings) as app:
        async with app.state.locks.hold("busy"):
            refused = await app.chat(chat_body(ASK), **{"X-Thread-Id": "busy"})
            other = await app.chat(chat_body(ASK), **{"X-Thread-Id": "free"})
        after = await app.chat(chat_body(ASK), **{"X-Thread-Id": "busy"})

    assert (refused.status_code, refused.headers["retry-after"]) == (409, "1")
    assert error_of(refused)["code"] == "thread_busy"
    assert (other.status_code, after.status_code) == (200, 200)


async def test_retried_and_repeated_requests_are_answered_from_the_thread(
    make_settings: SettingsFactory,
) -> None:
    async def checkpoints(app: Served, thread: str) -> int:
        config: Any = {"configurable": {"thread_id": thread}}
        return len([s async for s in app.state.graph.aget_state_history(config)])

    async with served(make_settings) as app:
        await app.chat(chat_body(ASK), **{"X-Thread-Id": "r1"})
        before = await checkpoints(app, "r1")
        retried = await app.chat(
            chat_body(ASK), **{"X-Thread-Id": "r1", "X-Stainless-Retry-Count": "1"}
        )
        assert await checkpoints(app, "r1") == before

        keyed = {"X-Thread-Id": "r2", "Idempotency-Key": "key-1"}
        await app.chat(chat_body(ASK, stream=True), **keyed)
        before = await checkpoints(app, "r2")
        repeated = await app.chat(chat_body(ASK), **keyed)
        assert await checkpoints(app, "r2") == before

    for response in (retried, repeated):
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "6*7 = 42"


async def test_a_background_task_leaves_the_thread_untouched(
    make_settings: SettingsFactory,
) -> None:
    task = ("user", "### Task:\nGenerate 1-3 broad tags for the chat")
    async with served(make_settings) as app:
        response = await app.chat(chat_body(task), **{"X-Thread-Id": "b1"})
        stored = await app.state.graph.aget_state({"configurable": {"thread_id": "b1"}})

    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {"tags": ["General"]}
    assert stored.values == {}
