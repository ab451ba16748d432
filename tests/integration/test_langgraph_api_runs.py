"""The LangGraph API's runs: every stream mode, background and stateless runs, wait, forks.

Every test runs against both targets of tests/langgraph_api_servers.py with the same body.
Runs on a busy thread (join, cancel, multitasking) are in test_langgraph_api_busy.py.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import RunCreateMetadata

from tests import langgraph_api_servers as servers
from tests.langgraph_api_servers import (
    Api,
    error_body,
    events,
    human,
    last_text,
    parts,
)

client = servers.client

QUESTION = human("What is 17 * 23?")
ANSWER = "17 * 23 = 391"


async def new_thread(client: LangGraphClient) -> str:
    return (await client.threads.create())["thread_id"]


async def test_stream_values_starts_with_metadata_and_carries_the_messages(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    created: list[RunCreateMetadata] = []
    received = await parts(
        client.runs.stream(
            thread_id, "agent", input=QUESTION, stream_mode="values", on_run_created=created.append
        )
    )
    assert received[0].event == "metadata"
    run_id = received[0].data["run_id"]
    # The SDK reads the run id from the response's Content-Location header.
    assert created == [{"run_id": run_id, "thread_id": thread_id}]
    assert set(events(received[1:])) == {"values"}
    assert received[1].data["messages"] == [
        {**received[1].data["messages"][0], "type": "human", "content": "What is 17 * 23?"}
    ]
    final = received[-1].data
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "tool", "ai"]
    assert last_text(final) == ANSWER
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"


async def test_stream_headers_locate_the_run(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url) as raw:
        thread = (await raw.post("/threads", json={})).json()
        body = {"assistant_id": "agent", "input": human("echo located")}
        async with raw.stream(
            "POST", f"/threads/{thread['thread_id']}/runs/stream", json=body
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            text = (await r.aread()).decode()
    assert r.headers["location"] == f"{r.headers['content-location']}/stream"  # to rejoin
    location = r.headers["content-location"]
    match = re.fullmatch(rf"/threads/{thread['thread_id']}/runs/([0-9a-f-]{{36}})", location)
    assert match is not None, location
    assert text.splitlines()[0] == "event: metadata"  # the reference ends its lines with CRLF
    assert f'"run_id":"{match.group(1)}"' in text.replace(" ", "")


async def test_stream_messages_tuple_chunks_make_the_answer(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="messages-tuple")
    )
    assert events(received)[0] == "metadata"
    assert set(events(received[1:])) == {"messages"}
    pairs = [part.data for part in received[1:]]
    assert all(len(pair) == 2 for pair in pairs)
    chunks = [(chunk, meta) for chunk, meta in pairs if chunk["type"] == "AIMessageChunk"]
    answer_id = chunks[-1][0]["id"]
    text = "".join(str(chunk["content"]) for chunk, _ in chunks if chunk["id"] == answer_id)
    assert text == ANSWER
    assert len([c for c, _ in chunks if c["id"] == answer_id and c["content"]]) > 1  # tokens
    assert {meta["langgraph_node"] for _, meta in chunks} == {"fallback_provider"}
    tool_results = [chunk for chunk, _ in pairs if chunk["type"] == "tool"]
    assert [t["content"] for t in tool_results] == ["391"]


async def test_stream_updates_name_each_node(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="updates")
    )
    assert events(received) == ["metadata"] + ["updates"] * (len(received) - 1)
    nodes = [next(iter(part.data)) for part in received[1:]]
    assert nodes == [
        "guard",
        "router",
        "compact",
        "fallback_provider",
        "tools",
        "compact",
        "fallback_provider",
        "respond",
    ]
    assert received[5].data["tools"]["messages"][0]["content"] == "391"


async def test_stream_events_are_callback_events(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="events")
    )
    assert set(events(received[1:])) == {"events"}
    kinds = {part.data["event"] for part in received[1:]}
    assert {"on_chain_start", "on_chain_end", "on_chat_model_stream", "on_tool_start"} <= kinds
    tools = [p.data["name"] for p in received[1:] if p.data["event"] == "on_tool_end"]
    assert tools == ["calculator"]


async def test_stream_debug_reports_checkpoints_and_tasks(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="debug")
    )
    assert set(events(received[1:])) == {"debug"}
    kinds = [part.data["type"] for part in received[1:]]
    assert {"checkpoint", "task", "task_result"} == set(kinds)
    tasks = [p.data["payload"]["name"] for p in received[1:] if p.data["type"] == "task"]
    assert tasks[:2] == ["guard", "router"]
    assert tasks[-1] == "respond"


async def test_stream_custom_is_accepted(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="custom")
    )
    # No node of this graph writes custom events: the stream is its metadata alone.
    assert events(received) == ["metadata"]
    assert last_text((await client.threads.get_state(thread_id))["values"]) == ANSWER


async def test_stream_several_modes_at_once(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    modes: list[Any] = ["values", "updates", "messages-tuple", "debug"]
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode=modes)
    )
    assert events(received)[0] == "metadata"
    assert set(events(received)) == {"metadata", "values", "updates", "messages", "debug"}
    values = [part.data for part in received if part.event == "values"]
    assert last_text(values[-1]) == ANSWER


async def test_background_run_get_list_and_join(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "agent", input=QUESTION)
    assert run["thread_id"] == thread_id
    assert run["status"] in {"pending", "running"}
    output = await client.runs.join(thread_id, run["run_id"])
    assert last_text(output) == ANSWER
    fetched = await client.runs.get(thread_id, run["run_id"])
    assert fetched["status"] == "success"
    assert fetched["assistant_id"] == run["assistant_id"]
    second = await client.runs.create(thread_id, "agent", input=human("echo again"))
    await client.runs.join(thread_id, second["run_id"])
    listed = await client.runs.list(thread_id)
    assert [(r["run_id"], r["status"]) for r in listed] == [
        (second["run_id"], "success"),
        (run["run_id"], "success"),
    ]


async def test_runs_wait_returns_the_final_values(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    output = await client.runs.wait(thread_id, "agent", input=QUESTION)
    assert last_text(output) == ANSWER
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_stateless_stream(client: LangGraphClient) -> None:
    received = await parts(client.runs.stream(None, "agent", input=QUESTION))
    assert events(received)[0] == "metadata"
    assert last_text(received[-1].data) == ANSWER


async def test_stateless_wait(client: LangGraphClient) -> None:
    assert last_text(await client.runs.wait(None, "agent", input=QUESTION)) == ANSWER


async def test_if_not_exists_create_makes_the_thread(client: LangGraphClient) -> None:
    thread_id = str(uuid.uuid4())
    output = await client.runs.wait(thread_id, "agent", input=QUESTION, if_not_exists="create")
    assert last_text(output) == ANSWER
    thread = await client.threads.get(thread_id)
    assert thread["metadata"] is not None
    assert thread["metadata"]["graph_id"] == "agent"
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await client.runs.wait(str(uuid.uuid4()), "agent", input=QUESTION)
    assert "detail" in error_body(raised.value, 404)


async def test_a_run_from_an_earlier_checkpoint_forks(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "agent", input=human("echo one"))
    fork_point = await client.threads.get_state(thread_id)
    await client.runs.wait(thread_id, "agent", input=human("echo two"))
    output = await client.runs.wait(
        thread_id,
        "agent",
        input=human("echo three"),
        checkpoint_id=fork_point["checkpoint"]["checkpoint_id"],
    )
    texts = [m["content"] for m in output["messages"] if m["type"] == "human"]  # type: ignore[call-overload]
    assert texts == ["echo one", "echo three"]
    state = await client.threads.get_state(thread_id)
    assert last_text(state["values"]) == "three"
    assert state["parent_checkpoint"] is not None


async def test_stream_tasks_and_checkpoints_modes_but_no_tools_mode(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    tasks = await parts(client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="tasks"))
    assert set(events(tasks[1:])) == {"tasks"}
    assert [p.data["name"] for p in tasks[1:3]] == ["guard", "guard"]  # its start, its result
    assert "input" in tasks[1].data
    assert "result" in tasks[2].data
    saved = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="checkpoints")
    )
    assert set(events(saved[1:])) == {"checkpoints"}
    assert {"config", "parent_config", "values", "next", "tasks"} <= set(saved[-1].data)
    assert last_text(saved[-1].data["values"]) == ANSWER
    # `tools` is a stream mode of newer LangGraph versions that neither server takes.
    for mode in ("tools", ["tools", "values"]):
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await parts(client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode=mode))  # type: ignore[arg-type]
        assert "detail" in error_body(raised.value, 422)


async def test_the_legacy_messages_mode_completes_only_whole_messages(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    received = await parts(
        client.runs.stream(thread_id, "agent", input=QUESTION, stream_mode="messages")
    )
    named = [
        (p.event, p.data[0])
        for p in received
        if p.event.startswith("messages/") and p.event != "messages/metadata"
    ]
    # A streamed (AI) message comes as partials, the last one whole; a tool's result whole.
    assert {kind for kind, message in named if message["type"] == "ai"} == {"messages/partial"}
    assert [(k, m["content"]) for k, m in named if m["type"] == "tool"] == [
        ("messages/complete", "391")
    ]
    assert named[-1][1]["content"] == ANSWER


async def test_join_stream_of_a_finished_run_sends_nothing_without_last_event_id(
    api: Api, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "agent", input=human("echo over"))
    await client.runs.join(thread_id, run["run_id"])
    path = f"/threads/{thread_id}/runs/{run['run_id']}/stream"
    async with httpx.AsyncClient(base_url=api.url) as raw:
        response = await raw.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text == ""
    assert await parts(client.runs.join_stream(thread_id, run["run_id"])) == []


async def test_a_stateless_background_run_is_read_by_a_thread_id_of_its_own(
    api: Api, client: LangGraphClient
) -> None:
    query = f"held-{uuid.uuid4().hex}"
    hold = api.gate.hold(query)
    created: list[RunCreateMetadata] = []
    try:
        run = await client.runs.create(
            None, "agent", input=human(f"search for {query}"), on_run_created=created.append
        )
        assert created == [{"run_id": run["run_id"], "thread_id": None}]  # `/runs/{run_id}`
        assert run["status"] in {"pending", "running"}
        thread_id = str(uuid.UUID(run["thread_id"]))
        assert await hold.reached()
        status = await servers.run_status(client, thread_id, run["run_id"], "running")
        assert status == "running"
    finally:
        hold.released.set()
    # It stores nothing: its thread is gone once it has ended (the service never stored it).
    assert await servers.thread_gone(client, thread_id) == 404
