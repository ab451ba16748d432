"""The LangGraph API door's threads, driven by the real `langgraph_sdk` client over HTTP.

Create, get, search, count, update, delete, copy; a thread's state (latest, at a checkpoint,
updated as a node) and its history; the same thread as `/v1` with `X-Thread-Id`, in the
caller's namespace; errors as `{detail}` with LangGraph's statuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.helpers import WEATHER_TOOL

Serve = Callable[[Settings], ServedApp]
JSON = {"Content-Type": "application/json"}

THREAD_KEYS = {
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "config",
    "values",
    "interrupts",
    "error",
}
STATE_KEYS = {
    "values",
    "next",
    "tasks",
    "metadata",
    "created_at",
    "checkpoint",
    "parent_checkpoint",
    "interrupts",
    "checkpoint_id",
    "parent_checkpoint_id",
}


def sdk_threads(client: Any) -> Any:
    """The SDK's threads client, untyped: its TypedDicts lack fields the server sends."""
    return client.threads


def human(text: str) -> dict[str, Any]:
    """A run's input of one human message."""
    return {"messages": [{"type": "human", "content": text}]}


def chat(app: ServedApp, key: str | None, thread_id: str, text: str) -> str:
    """One `/v1/chat/completions` turn on a thread; the answer."""
    headers = {"X-Thread-Id": thread_id}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "offline", "messages": [{"role": "user", "content": text}]},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def on(
    database: str, request: pytest.FixtureRequest, make_settings: SettingsFactory, **extra: Any
) -> Settings:
    """Settings on SQLite, or on a fresh PostgreSQL database."""
    if database == "postgres":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    return make_settings(**extra)


@pytest.mark.parametrize("database", DATABASES)
async def test_threads_from_create_to_delete(
    make_settings: SettingsFactory, serve: Serve, request: pytest.FixtureRequest, database: str
) -> None:
    app = serve(on(database, request, make_settings))
    async with get_client(url=app.url) as sdk:
        client = sdk_threads(sdk)
        created = await client.create(metadata={"graph_id": "agent", "user": {"id": 7}})
        assert set(created) == THREAD_KEYS
        assert (created["status"], created["values"], created["interrupts"]) == ("idle", None, {})
        assert created["metadata"] == {"graph_id": "agent", "user": {"id": 7}}
        thread_id = created["thread_id"]

        with pytest.raises(ConflictError):
            await client.create(thread_id=thread_id)
        same = await client.create(thread_id=thread_id, if_exists="do_nothing")
        assert same == created
        assert await client.get(thread_id) == created
        empty = await client.get_state(thread_id)
        assert set(empty) == STATE_KEYS
        assert (empty["values"], empty["checkpoint"]) == ({}, None)
        assert await client.get_history(thread_id) == []

        patched = await client.update(thread_id, metadata={"topic": "maths"})
        assert patched["metadata"] == {"graph_id": "agent", "user": {"id": 7}, "topic": "maths"}
        other = await client.create(thread_id="mine-2", metadata={"graph_id": "other"})
        found = await client.search(metadata={"user": {"id": 7}})
        assert [t["thread_id"] for t in found] == [thread_id]
        newest_first = await client.search(limit=10)
        assert [t["thread_id"] for t in newest_first] == [other["thread_id"], thread_id]
        assert await client.count(metadata={"graph_id": "agent"}) == 1
        assert await client.count() == 2
        unicode = await client.create(thread_id="日本語 🙂?")
        assert (await client.get("日本語 🙂?"))["thread_id"] == unicode["thread_id"] == "日本語 🙂?"
        await client.delete("日本語 🙂?")

        written = await client.update_state(
            thread_id, {"messages": [{"type": "human", "content": "hello"}]}
        )
        assert written["checkpoint"]["thread_id"] == thread_id
        state = await client.get_state(thread_id)
        assert set(state) == STATE_KEYS
        assert state["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
        assert [m["content"] for m in state["values"]["messages"]] == ["hello"]
        assert state["values"]["messages"][0]["type"] == "human"
        thread = await client.get(thread_id)
        assert thread["values"]["messages"][0]["content"] == "hello"
        assert thread["state_updated_at"] >= thread["created_at"]

        copy = await client.copy(thread_id)
        assert copy["thread_id"] != thread_id
        assert copy["metadata"] == patched["metadata"]
        copied_history = await client.get_history(copy["thread_id"], limit=100)
        history = await client.get_history(thread_id, limit=100)
        assert [s["checkpoint"]["checkpoint_id"] for s in copied_history] == [
            s["checkpoint"]["checkpoint_id"] for s in history
        ]
        assert {s["checkpoint"]["thread_id"] for s in copied_history} == {copy["thread_id"]}

        await client.delete(thread_id)
        with pytest.raises(NotFoundError):
            await client.get(thread_id)
        with pytest.raises(NotFoundError):
            await client.delete(thread_id)
        with pytest.raises(NotFoundError):
            await client.get_state(thread_id)
        assert (await client.get(copy["thread_id"]))["values"]["messages"]

        built = await client.create(
            supersteps=[
                {"updates": [{"values": human("a"), "as_node": "respond"}]},
                {"updates": [{"values": human("b"), "as_node": "respond"}]},
            ]
        )
        assert [m["content"] for m in built["values"]["messages"]] == ["a", "b"]
        built_history = await client.get_history(built["thread_id"])
        assert [s["metadata"]["source"] for s in built_history] == ["update", "update"]


async def test_errors_are_detail_bodies_never_5xx(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    with httpx.Client(base_url=app.url, timeout=10) as http:
        unknown = http.get("/threads/nope")
        assert unknown.status_code == 404
        assert "nope" in unknown.json()["detail"]
        for path in ("/threads/nope/state", "/threads/nope/history"):
            assert http.get(path).status_code == 404
        assert http.post("/threads/nope/history", json={}).status_code == 404
        assert http.delete("/threads/nope").status_code == 404
        bad = http.post("/threads", json={"metadata": 5})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "metadata"]
        assert http.post("/threads/search", json={"limit": -1}).status_code == 422
        unparsable = http.post("/threads", content=b"{not json", headers=JSON)
        assert unparsable.status_code == 422, unparsable.text
        invalid = http.post("/threads", json={"thread_id": "a\u202eb"})
        assert invalid.status_code == 400
        assert invalid.json()["code"] == "invalid_thread_id"
        created = http.post("/threads", json={"thread_id": "t-1"}).json()
        assert created["thread_id"] == "t-1"
        no_node = http.post("/threads/t-1/state", json={"values": {}, "as_node": "nonode"})
        assert no_node.status_code == 400
        assert "nonode" in no_node.json()["detail"]
        for values in ("text", [1, 2], {"messages": 5}, {"messages": [{"bad": 1}]}):
            unwritable = http.post("/threads/t-1/state", json={"values": values})
            assert unwritable.status_code == 400, unwritable.text
        for before in (5, [1]):
            bad_before = http.post("/threads/t-1/history", json={"before": before})
            assert bad_before.status_code == 422
        unbuilt = http.post(
            "/threads",
            json={
                "thread_id": "t-2",
                "supersteps": [{"updates": [{"values": {}, "as_node": "x"}]}],
            },
        )
        assert unbuilt.status_code == 400
        assert http.get("/threads/t-2").status_code == 404
        missing = http.get("/threads/t-1/state/1f000000-0000-6000-8000-000000000000")
        assert missing.status_code == 404


@pytest.mark.parametrize("database", DATABASES)
async def test_a_v1_thread_is_the_same_thread_here_in_the_callers_namespace(
    make_settings: SettingsFactory, serve: Serve, request: pytest.FixtureRequest, database: str
) -> None:
    settings = on(
        database,
        request,
        make_settings,
        api_keys=["sk-alice", "sk-bob"],
        checkpoint_durability="sync",
    )
    app = serve(settings)
    assert chat(app, "sk-alice", "conv-1", "echo first") == "first"
    assert chat(app, "sk-alice", "conv-1", "echo second") == "second"

    async with (
        get_client(url=app.url, api_key="sk-alice") as alice_sdk,
        get_client(url=app.url, api_key="sk-bob") as bob_sdk,
    ):
        alice, bob = sdk_threads(alice_sdk), sdk_threads(bob_sdk)
        thread = await alice.get("conv-1")
        assert thread["thread_id"] == "conv-1"
        assert (thread["status"], thread["metadata"]) == ("idle", {})
        messages = thread["values"]["messages"]
        assert [m["content"] for m in messages if m["type"] == "human"] == [
            "echo first",
            "echo second",
        ]
        assert messages[-1]["content"] == "second"
        assert thread["created_at"] < thread["updated_at"]

        history = await alice.get_history("conv-1", limit=100)
        assert len(history) >= 4
        times = [s["created_at"] for s in history]
        assert times == sorted(times, reverse=True)
        assert history[-1]["created_at"][:19] <= thread["created_at"][:19] <= times[-1]
        assert {s["checkpoint"]["thread_id"] for s in history} == {"conv-1"}
        assert len(history[0]["values"]["messages"]) == len(messages)
        text = json.dumps([thread, history])
        assert ":conv-1" not in text  # the stored, key-scoped id never shows

        older = await alice.get_history("conv-1", limit=2, before=history[1]["checkpoint"])
        assert [s["checkpoint_id"] for s in older] == [s["checkpoint_id"] for s in history[2:4]]
        inputs = await alice.get_history("conv-1", limit=100, metadata={"source": "input"})
        assert len(inputs) == 2  # one per turn
        assert {s["metadata"]["source"] for s in inputs} == {"input"}
        at = await alice.get_state("conv-1", checkpoint_id=history[2]["checkpoint_id"])
        assert at["checkpoint"] == history[2]["checkpoint"]
        by_body = await alice.get_state("conv-1", checkpoint=history[2]["checkpoint"])
        assert by_body == at

        listed = await alice.search()
        assert [t["thread_id"] for t in listed] == ["conv-1"]
        assert await alice.search(metadata={"graph_id": "agent"}) == []
        with pytest.raises(NotFoundError):
            await bob.get("conv-1")
        assert await bob.search() == []

        # Studio's "re-run from here": a copy of an earlier checkpoint becomes the latest.
        fork = await alice.update_state(
            "conv-1", None, as_node="__copy__", checkpoint_id=history[0]["checkpoint_id"]
        )
        latest = await alice.get_state("conv-1")
        assert latest["checkpoint"]["checkpoint_id"] == fork["checkpoint"]["checkpoint_id"]
        assert len(latest["values"]["messages"]) == len(messages)

        stamped = await alice.update("conv-1", metadata={"graph_id": "agent"})
        assert stamped["metadata"] == {"graph_id": "agent"}
        assert stamped["created_at"] == thread["created_at"]  # its first checkpoint's time
    assert chat(app, "sk-alice", "conv-1", "echo third") == "third"


def _ids(threads: list[dict[str, Any]]) -> list[str]:
    return [t["thread_id"] for t in threads]


@pytest.mark.parametrize("database", DATABASES)
async def test_search_pages_and_counts(
    make_settings: SettingsFactory, serve: Serve, request: pytest.FixtureRequest, database: str
) -> None:
    app = serve(on(database, request, make_settings))
    chat(app, None, "from-v1", "echo hi")
    async with get_client(url=app.url) as sdk:
        client = sdk_threads(sdk)
        for n in range(3):
            await client.create(thread_id=f"t{n}", metadata={"n": n, "graph_id": "agent"})
    with httpx.Client(base_url=app.url, timeout=10) as http:
        page = http.post("/threads/search", json={"limit": 2, "metadata": {"graph_id": "agent"}})
        assert _ids(page.json()) == ["t2", "t1"]
        assert page.headers["x-pagination-total"] == "3"
        rest = http.post("/threads/search", json={"limit": 3, "offset": 2, "metadata": {}})
        assert _ids(rest.json()) == ["t0", "from-v1"]
        assert rest.headers["x-pagination-total"] == "4"
        oldest = http.post("/threads/search", json={"sort_order": "asc", "limit": 1}).json()
        assert _ids(oldest) == ["from-v1"]
        by_values = http.post("/threads/search", json={"values": {"messages": [{"content": "hi"}]}})
        assert _ids(by_values.json()) == ["from-v1"]
        selected = http.post("/threads/search", json={"select": ["thread_id"], "ids": ["t1"]})
        assert selected.json() == [{"thread_id": "t1"}]
        assert http.post("/threads/count", json={}).json() == 4
        assert http.post("/threads/count", json={"status": "idle"}).json() == 4


async def test_deleting_a_responses_thread_forgets_its_stored_responses(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    with httpx.Client(base_url=app.url, timeout=30) as http:
        created = http.post(
            "/v1/responses", json={"model": "offline", "input": "echo hi", "store": True}
        )
        assert created.status_code == 200, created.text
        response_id = created.json()["id"]
        thread = http.get(f"/threads/{response_id}")
        assert thread.status_code == 200, thread.text
        assert thread.json()["values"]["messages"][-1]["content"] == "hi"
        assert http.get(f"/v1/responses/{response_id}").status_code == 200

        assert http.delete(f"/threads/{response_id}").status_code == 204
        assert http.get(f"/threads/{response_id}").status_code == 404
        assert http.get(f"/v1/responses/{response_id}").status_code == 404


async def test_a_thread_paused_for_a_client_tool_is_interrupted(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test"]}, openai_base_url=primary.openai_base_url
    )
    app = serve(settings)
    primary.script(
        Reply("Let me look.", tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")])
    )
    paused = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": "Weather in Oslo?"}],
            "tools": [WEATHER_TOOL],
        },
        headers={"X-Thread-Id": "paused"},
        timeout=30,
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["choices"][0]["finish_reason"] == "tool_calls"

    async with get_client(url=app.url) as sdk:
        client = sdk_threads(sdk)
        thread = await client.get("paused")
        assert thread["status"] == "interrupted"
        ((task_id, interrupts),) = thread["interrupts"].items()
        (interrupt,) = interrupts
        assert set(interrupt) == {"id", "value"}
        state = await client.get_state("paused")
        assert state["next"] == ["client_tools"]
        (task,) = state["tasks"]
        assert task["id"] == task_id
        assert task["interrupts"] == interrupts
        assert state["interrupts"] == interrupts
        assert [t["thread_id"] for t in await client.search(status="interrupted")] == ["paused"]
        assert await client.search(status="idle") == []


async def test_remote_graph_reads_and_updates_a_threads_state(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(checkpoint_durability="sync"))
    chat(app, None, "remote", "echo hi")
    async with get_client(url=app.url) as client:
        remote = RemoteGraph("agent", client=client)
        config: RunnableConfig = {"configurable": {"thread_id": "remote"}}

        state = await remote.aget_state(config)
        assert state.values["messages"][-1]["content"] == "hi"
        assert state.config["configurable"]["thread_id"] == "remote"
        history = [s async for s in remote.aget_state_history(config, limit=3)]
        assert history[0].config == state.config
        older = [
            s async for s in remote.aget_state_history(config, before=history[0].config, limit=1)
        ]
        assert older[0].config == history[1].config

        written = await remote.aupdate_state(
            config, {"messages": [("human", "more")]}, as_node="respond"
        )
        after = await remote.aget_state(config)
        assert (
            after.config["configurable"]["checkpoint_id"]
            == written["configurable"]["checkpoint_id"]
        )
        assert after.values["messages"][-1]["content"] == "more"
