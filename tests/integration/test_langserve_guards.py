"""The /agent door applies the other doors' guards: message and batch limits, the rate limit,
a busy thread's 409 before any stream, and no made-up checkpoint answered as found.

Driven over real HTTP with LangServe's own `RemoteRunnable` where it is the client, and raw
httpx where the bytes on the wire are the point (a 409 must come before any event).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langserve import RemoteRunnable

from server.langserve.schemas import AgentInput
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply
from tests.helpers import AgentRunnable, thread_messages
from tests.integration.test_rate_limits import clear_of_a_minute_boundary

Serve = Callable[[Settings], ServedApp]

STREAMING = ("stream", "stream_events", "stream_log")


def turn(*texts: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text) for text in texts]}


def on_thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def agent(app: ServedApp, key: str | None = None) -> AgentRunnable:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return RemoteRunnable(f"{app.url}/agent/", headers=headers)


@contextlib.asynccontextmanager
async def async_agent(app: ServedApp, key: str | None = None) -> AsyncIterator[AgentRunnable]:
    """`agent` for async calls, its connections closed while the test's loop still runs."""
    runnable = agent(app, key)
    try:
        yield runnable
    finally:
        await runnable.async_client.aclose()
        runnable.sync_client.close()


def refusal(caught: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI-shaped `error` of what the client was refused."""
    response = caught.value.response
    error: dict[str, Any] = response.json()["error"]
    return response.status_code, error


async def drain(runnable: AgentRunnable, route: str, input: Any, config: Any = None) -> None:
    """Read a whole stream of `route` (`stream`, `stream_events`, `stream_log`)."""
    if route == "stream_events":
        events = runnable.astream_events(input, config, version="v2")
    else:
        events = getattr(runnable, f"a{route}")(input, config)
    async for _ in events:
        pass


def streamed_refusal(caught: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> int:
    """The status a streaming call of `RemoteRunnable` was refused with (its body is unread)."""
    return caught.value.response.status_code


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every input LangServe turned into message objects (`AgentInput.model_validate`)."""
    seen: list[Any] = []
    validate = AgentInput.model_validate

    def counting(value: Any, *args: Any, **kwargs: Any) -> AgentInput:
        seen.append(value)
        return validate(value, *args, **kwargs)

    monkeypatch.setattr(AgentInput, "model_validate", counting)
    return seen


# --- MAX_MESSAGES and MAX_BATCH_INPUTS --------------------------------------------------------


async def test_too_many_messages_is_a_400_before_any_message_is_built_or_stored(
    make_settings: SettingsFactory, serve: Serve, validations: list[Any]
) -> None:
    settings = make_settings(max_messages=3)
    app = serve(settings)
    runnable = agent(app)

    with pytest.raises(httpx.HTTPStatusError) as caught:
        runnable.invoke(turn("a", "b", "c", "d"), on_thread("long"))
    status, error = refusal(caught)
    assert (status, error["code"], error["param"]) == (400, "too_many_messages", "input.messages")
    assert "at most 3" in error["message"]
    async with async_agent(app) as streaming:
        for route in STREAMING:  # the same 400 before a stream starts
            with pytest.raises(httpx.HTTPStatusError) as caught:
                await drain(streaming, route, turn("a", "b", "c", "d"), on_thread("long"))
            assert streamed_refusal(caught) == 400
    assert validations == []  # refused before LangServe built a single message
    assert await thread_messages(settings, "long") == []
    # Within the limit the same thread runs.
    runnable.invoke(turn("a", "b", "echo c"), on_thread("long"))
    assert len(validations) == 1


async def test_a_hundred_thousand_messages_are_refused_not_stored(
    make_settings: SettingsFactory, serve: Serve, validations: list[Any]
) -> None:
    settings = make_settings()  # MAX_MESSAGES=2000 by default
    app = serve(settings)
    messages = [{"type": "human", "content": "x"}] * 100_000
    response = httpx.post(
        f"{app.url}/agent/invoke",
        json={"input": {"messages": messages}, "config": on_thread("flood")},
        timeout=60,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_messages"
    assert validations == []
    assert await thread_messages(settings, "flood") == []


async def test_a_batch_is_bounded_in_inputs_and_in_messages_altogether(
    make_settings: SettingsFactory, serve: Serve, validations: list[Any]
) -> None:
    settings = make_settings(max_batch_inputs=3, max_messages=4)
    runnable = agent(serve(settings))

    with pytest.raises(httpx.HTTPStatusError) as caught:
        runnable.batch([turn("echo a")] * 4, on_thread("wide"))
    status, error = refusal(caught)
    assert (status, error["code"], error["param"]) == (400, "too_many_inputs", "inputs")
    assert "at most 3 (MAX_BATCH_INPUTS)" in error["message"]
    # Each input is within MAX_MESSAGES, but not the batch's five messages together.
    inputs = [turn("a", "echo b"), turn("echo c"), turn("d", "echo e")]
    configs = [on_thread(f"wide-{n}") for n in range(3)]
    with pytest.raises(httpx.HTTPStatusError) as caught:
        # A config per input: langserve annotates `batch`'s config as a single one.
        runnable.batch(inputs, configs)  # type: ignore[arg-type]
    status, error = refusal(caught)
    assert (status, error["code"], error["param"]) == (400, "too_many_messages", "inputs")
    assert validations == []
    for n in range(3):
        assert await thread_messages(settings, f"wide-{n}") == []
    # Within both limits the batch runs, each input on its own thread.
    # A config per input: langserve annotates `batch`'s config as a single one.
    outputs = runnable.batch(inputs[:2], configs[:2])  # type: ignore[arg-type]
    assert [o["messages"][-1].content for o in outputs] == ["b", "c"]


# --- the rate limit ---------------------------------------------------------------------------


def limited(make_settings: SettingsFactory, **extra: Any) -> Settings:
    return make_settings(api_keys=["sk-one", "sk-two"], rate_limit_rpm=3, **extra)


def assert_rate_limited(caught: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> None:
    response = caught.value.response
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 120
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["content-type"].startswith("application/json")  # not a stream
    if not response.is_stream_consumed:  # the streaming calls leave the body unread
        return
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "rate_limit_error")


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def shared(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings that keep rate limits and thread locks in-process, or in a real Redis."""
    if request.param == "in-process":
        return {}
    return {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": request.getfixturevalue("redis_prefix"),
        "redis_timeout": 5.0,  # a loaded machine's first script call may be slow
    }


async def test_the_rate_limit_counts_every_run_route_and_each_input_of_a_batch(
    make_settings: SettingsFactory, serve: Serve, shared: dict[str, Any]
) -> None:
    app = serve(limited(make_settings, **shared))
    clear_of_a_minute_boundary()
    async with async_agent(app, "sk-one") as one, async_agent(app, "sk-two") as two:
        await one.ainvoke(turn("echo first"))
        outputs = await one.abatch([turn("echo a"), turn("echo b")])
        assert [o["messages"][-1].content for o in outputs] == ["a", "b"]
        with pytest.raises(httpx.HTTPStatusError) as caught:
            await one.ainvoke(turn("echo over"))
        assert_rate_limited(caught)
        with pytest.raises(httpx.HTTPStatusError) as caught:
            await one.abatch([turn("echo over")])
        assert_rate_limited(caught)
        for route in STREAMING:
            with pytest.raises(httpx.HTTPStatusError) as caught:
                await drain(one, route, turn("echo over"))
            assert_rate_limited(caught)
        # Another key has its own budget; the schemas and the playground are not counted.
        other = await two.ainvoke(turn("echo other"))
        assert other["messages"][-1].content == "other"
    schema = httpx.get(f"{app.url}/agent/input_schema", headers={"Authorization": "Bearer sk-one"})
    assert schema.status_code == 200


def test_a_batch_larger_than_what_is_left_of_the_minute_is_refused(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(limited(make_settings))
    one = agent(app, "sk-one")
    clear_of_a_minute_boundary()
    one.invoke(turn("echo first"))
    one.invoke(turn("echo second"))

    with pytest.raises(httpx.HTTPStatusError) as caught:
        one.batch([turn("echo a"), turn("echo b")])
    assert_rate_limited(caught)


# --- a busy thread ----------------------------------------------------------------------------


async def wait_for_requests(upstream: FakeUpstream, count: int) -> None:
    """Until the fake provider has received `count` requests (the runs are under way)."""
    while len(upstream.requests) < count:
        await asyncio.sleep(0.01)


async def test_a_busy_thread_is_a_409_before_any_streamed_byte(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, shared: dict[str, Any]
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-x"]}, openai_base_url=primary.openai_base_url, **shared
        )
    )
    primary.script(Fault.hang(30), Reply("streamed"), Reply("again"))
    body = {"input": turn_json("hold it"), "config": on_thread("busy")}
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as client:

        async def hold() -> None:  # a stream of the same door holds the thread
            async with client.stream("POST", "/agent/stream", json=body) as response:
                await response.aread()

        holding = asyncio.create_task(hold())
        await wait_for_requests(primary, 1)  # its run waits for the provider: the thread is busy
        for route in STREAMING:
            async with client.stream(
                "POST", f"/agent/{route}", json={**body, "input": turn_json("b")}
            ) as response:
                raw = await response.aread()
            assert response.status_code == 409, route
            assert response.headers["content-type"].startswith("application/json")
            assert b"event:" not in raw  # nothing was streamed
            assert b"data:" not in raw
            assert response.json()["error"]["code"] == "thread_busy"
        # LangServe's client sees the 409 as such, not as a stream cut by a server error.
        async with async_agent(app) as runnable:
            for route in STREAMING:
                with pytest.raises(httpx.HTTPStatusError) as caught:
                    await drain(runnable, route, turn("b"), on_thread("busy"))
                assert streamed_refusal(caught) == 409
        holding.cancel()  # the holder leaves: its run is cancelled, the thread freed
        with pytest.raises(asyncio.CancelledError):
            await holding
    assert primary.wait_for_disconnects()
    # The refused streams left no lock behind, and a stream releases its own at its end.
    async with async_agent(app) as runnable:
        updates = [update async for update in runnable.astream(turn("c"), on_thread("busy"))]
        assert any("respond" in update for update in updates)
        again = await runnable.ainvoke(turn("d"), on_thread("busy"))
    assert again["messages"][-1].content == "again"


def turn_json(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


# --- made-up checkpoint ids -------------------------------------------------------------------


def test_a_made_up_checkpoint_id_is_a_404_not_an_echo(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    agent(app).invoke(turn("echo kept"), on_thread("real"))
    state = f"{app.url}/agent/threads/real/state"
    latest = httpx.get(state).json()["checkpoint_id"]

    assert httpx.get(state, params={"checkpoint_id": latest}).json()["checkpoint_id"] == latest
    made_up = httpx.get(state, params={"checkpoint_id": "1f0-made-up"})
    assert made_up.status_code == 404
    error = made_up.json()["error"]
    assert (error["code"], error["param"]) == ("checkpoint_not_found", "checkpoint_id")
    assert "1f0-made-up" not in made_up.text
    unknown = httpx.get(f"{app.url}/agent/threads/nowhere/state", params={"checkpoint_id": latest})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "thread_not_found"


async def test_a_run_from_a_made_up_checkpoint_is_a_404_and_leaves_the_thread_as_it_was(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings()
    app = serve(settings)
    runnable = agent(app)
    runnable.invoke(turn("echo kept"), on_thread("real"))
    before = await thread_messages(settings, "real")
    branch: RunnableConfig = {"configurable": {"thread_id": "real", "checkpoint_id": "1f0-made-up"}}

    with pytest.raises(httpx.HTTPStatusError) as caught:
        runnable.invoke(turn("echo lost"), branch)
    status, error = refusal(caught)
    assert (status, error["code"]) == (404, "checkpoint_not_found")
    assert error["param"] == "config.configurable.checkpoint_id"
    async with async_agent(app) as streaming:
        for route in STREAMING:  # refused before a stream starts
            with pytest.raises(httpx.HTTPStatusError) as caught:
                await drain(streaming, route, turn("echo lost"), branch)
            assert streamed_refusal(caught) == 404
    assert await thread_messages(settings, "real") == before
    # A stored checkpoint still branches.
    latest = httpx.get(f"{app.url}/agent/threads/real/state").json()["checkpoint_id"]
    branched = runnable.invoke(
        turn("echo branched"), {"configurable": {"thread_id": "real", "checkpoint_id": latest}}
    )
    assert branched["messages"][-1].content == "branched"
