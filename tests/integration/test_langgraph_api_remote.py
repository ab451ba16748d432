"""The LangGraph API's interrupts, `RemoteGraph`, the long-term memory store and its errors.

Every test runs against both targets of tests/langgraph_api_servers.py with the same body.
A run pauses when its context offers a client tool and forces the model to call it (the
offline model then calls it with arguments drawn from the question); the tool call's id,
keyed to the client's answer, resumes it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command
from langgraph_sdk.client import LangGraphClient

from tests import langgraph_api_servers as servers
from tests.langgraph_api_servers import Api, error_body, events, human, last_text, parts

client = servers.client

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PAUSING: dict[str, Any] = {
    "client_tools": [WEATHER],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
}
"""A run context that makes the graph pause for the client's `get_weather`."""


def on_thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def weather_call(values: Any) -> dict[str, Any]:
    """The `get_weather` call the paused run asks the client to make."""
    (call,) = values["messages"][-1]["tool_calls"]
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "Paris"}
    return dict(call)


async def test_a_client_tool_pauses_the_run_with_an_interrupt(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    received = await parts(
        client.runs.stream(
            thread_id,
            "agent",
            input=human("What is the weather in Paris?"),
            context=PAUSING,
            stream_mode=["values", "updates"],
        )
    )
    call = weather_call(received[-1].data)
    (interrupt,) = received[-1].data["__interrupt__"]
    assert interrupt["value"] == {"tool_calls": [call]}
    updates = [p.data for p in received if p.event == "updates" and "__interrupt__" in p.data]
    assert [u["__interrupt__"][0]["id"] for u in updates] == [interrupt["id"]]

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert [i["id"] for i in thread["interrupts"][next(iter(thread["interrupts"]))]] == [
        interrupt["id"]
    ]
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["client_tools"]
    (task,) = state["tasks"]
    assert task["name"] == "client_tools"
    assert [i["value"] for i in task["interrupts"]] == [{"tool_calls": [call]}]
    (head,) = await client.threads.get_history(thread_id, limit=1)
    assert head["tasks"][0]["interrupts"][0]["id"] == interrupt["id"]
    interrupted = await client.threads.search(status="interrupted", limit=100)
    assert thread_id in {t["thread_id"] for t in interrupted}


async def test_command_resume_continues_the_paused_run(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    paused = await client.runs.wait(
        thread_id, "agent", input=human("What is the weather in Paris?"), context=PAUSING
    )
    call = weather_call(paused)
    output = await client.runs.wait(
        thread_id, "agent", command={"resume": {call["id"]: "sunny"}}, context=PAUSING
    )
    assert [m["type"] for m in output["messages"]] == ["human", "ai", "tool", "ai"]  # type: ignore[call-overload]
    assert output["messages"][2]["tool_call_id"] == call["id"]  # type: ignore[call-overload]
    assert last_text(output) == "sunny"
    assert "__interrupt__" not in output
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_remote_graph_invoke_on_a_thread(client: LangGraphClient) -> None:
    remote = RemoteGraph("agent", client=client)
    config = on_thread(str(uuid.uuid4()))
    output = await remote.ainvoke(human("What is 17 * 23?"), config)
    assert last_text(output) == "17 * 23 = 391"
    second = await remote.ainvoke(human("echo again"), config)
    assert len(second["messages"]) == 8


async def test_remote_graph_streams_values_updates_and_messages(client: LangGraphClient) -> None:
    remote = RemoteGraph("agent", client=client)
    config = on_thread(str(uuid.uuid4()))
    values = [c async for c in remote.astream(human("echo one"), config, stream_mode="values")]
    assert last_text(values[-1]) == "one"
    updates = [c async for c in remote.astream(human("echo two"), config, stream_mode="updates")]
    assert [next(iter(u)) for u in updates][-1] == "respond"
    assert "fallback_provider" in {next(iter(u)) for u in updates}
    messages: list[Any] = [
        c async for c in remote.astream(human("echo three"), config, stream_mode="messages")
    ]
    tokens = [chunk for chunk, _ in messages if chunk["type"] == "AIMessageChunk"]
    answer_id = tokens[-1]["id"]
    assert "".join(t["content"] for t in tokens if t["id"] == answer_id) == "three"


async def test_remote_graph_state_history_and_update(client: LangGraphClient) -> None:
    remote = RemoteGraph("agent", client=client)
    thread_id = str(uuid.uuid4())
    config = on_thread(thread_id)
    await remote.ainvoke(human("echo kept"), config)
    state = await remote.aget_state(config)
    assert last_text(state.values) == "kept"
    assert state.next == ()
    assert state.config["configurable"]["thread_id"] == thread_id
    history = [s async for s in remote.aget_state_history(config, limit=3)]
    assert len(history) == 3
    assert history[0].config == state.config
    written = await remote.aupdate_state(
        config, {"messages": [{"type": "ai", "content": "patched"}]}, as_node="respond"
    )
    assert written["configurable"]["checkpoint_id"] != state.config["configurable"]["checkpoint_id"]
    assert last_text((await remote.aget_state(config)).values) == "patched"


async def test_remote_graph_resumes_a_paused_run_with_command(client: LangGraphClient) -> None:
    remote = RemoteGraph("agent", client=client)
    config = on_thread(str(uuid.uuid4()))
    paused = await remote.ainvoke(human("What is the weather in Paris?"), config, context=PAUSING)
    call = weather_call(paused)
    assert paused["__interrupt__"][0]["value"] == {"tool_calls": [call]}
    state = await remote.aget_state(config)
    assert state.next == ("client_tools",)
    assert [i.value for i in state.interrupts] == [{"tool_calls": [call]}]
    output = await remote.ainvoke(Command(resume={call["id"]: "sunny"}), config, context=PAUSING)
    assert last_text(output) == "sunny"


def namespace() -> list[str]:
    return ["conformance", uuid.uuid4().hex]


async def test_store_put_then_get(client: LangGraphClient) -> None:
    space = namespace()
    await client.store.put_item(space, "colour", {"value": "red"})
    item = await client.store.get_item(space, "colour")
    assert item is not None
    assert item["namespace"] == space
    assert item["key"] == "colour"
    assert item["value"] == {"value": "red"}
    await client.store.put_item(space, "colour", {"value": "blue"})
    again = await client.store.get_item(space, "colour")
    assert again is not None
    assert again["value"] == {"value": "blue"}


async def test_store_search_by_prefix_and_filter(client: LangGraphClient) -> None:
    space = namespace()
    await client.store.put_item([*space, "a"], "one", {"colour": "red", "n": 1})
    await client.store.put_item([*space, "a"], "two", {"colour": "blue", "n": 2})
    await client.store.put_item([*space, "b"], "three", {"colour": "red", "n": 3})
    everything = await client.store.search_items(space)
    assert sorted(i["key"] for i in everything["items"]) == ["one", "three", "two"]
    only_a = await client.store.search_items([*space, "a"])
    assert sorted(i["key"] for i in only_a["items"]) == ["one", "two"]
    red = await client.store.search_items(space, filter={"colour": "red"})
    assert sorted(i["key"] for i in red["items"]) == ["one", "three"]
    page = await client.store.search_items(space, limit=1)
    assert len(page["items"]) == 1


async def test_store_lists_namespaces(client: LangGraphClient) -> None:
    space = namespace()
    await client.store.put_item([*space, "a"], "k", {"v": 1})
    await client.store.put_item([*space, "b", "c"], "k", {"v": 2})
    listed = await client.store.list_namespaces(prefix=space)
    assert sorted(listed["namespaces"]) == [[*space, "a"], [*space, "b", "c"]]
    shallow = await client.store.list_namespaces(prefix=space, max_depth=3)
    assert sorted(shallow["namespaces"]) == [[*space, "a"], [*space, "b"]]


async def test_store_delete_item(client: LangGraphClient) -> None:
    space = namespace()
    await client.store.put_item(space, "gone", {"v": 1})
    await client.store.delete_item(space, "gone")
    # The reference answers a missing item with 200 and a JSON null (the SDK returns None).
    assert await client.store.get_item(space, "gone") is None
    assert (await client.store.search_items(space))["items"] == []


async def test_unknown_thread_run_and_assistant_are_404_with_json(
    client: LangGraphClient,
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    unknown = str(uuid.uuid4())
    calls = [
        client.threads.get(unknown),
        client.threads.get_state(unknown),
        client.runs.get(thread_id, unknown),
        client.runs.get(unknown, unknown),
        client.assistants.get(unknown),
        client.runs.wait(thread_id, unknown, input=human("hi")),
    ]
    for call in calls:
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await call
        assert "detail" in error_body(raised.value, 404)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/threads", b"not json"),
        ("/threads", b'{"metadata": 5}'),
        ("/threads/search", b'{"limit": "ten"}'),
        ("/assistants/search", b"[1, 2]"),
        ("/runs/wait", b'{"assistant_id": "agent", "stream_mode": "bogus"}'),
        ("/runs/stream", b'{"input": {}}'),
        ("/store/items/search", b'{"namespace_prefix": "flat"}'),
    ],
)
async def test_a_malformed_body_is_422_with_json(api: Api, path: str, body: bytes) -> None:
    async with httpx.AsyncClient(base_url=api.url) as raw:
        response = await raw.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "detail" in response.json()


async def test_a_malformed_run_body_on_a_thread_is_422(api: Api, client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    async with httpx.AsyncClient(base_url=api.url) as raw:
        for route in ("runs", "runs/wait", "runs/stream"):
            response = await raw.post(f"/threads/{thread_id}/{route}", json={"input": {}})
            assert response.status_code == 422, (route, response.text)
            assert "detail" in response.json()
        put = await raw.put("/store/items", json={"namespace": ["a"]})
        assert put.status_code == 422, put.text
    assert (await client.threads.get(thread_id))["status"] == "idle"
    assert events(await parts(client.runs.stream(thread_id, "agent", input=human("echo ok"))))
