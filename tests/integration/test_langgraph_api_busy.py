"""The LangGraph API on a busy thread: join, reconnect, cancel and the multitask strategies.

Every test runs against both targets of tests/langgraph_api_servers.py with the same body.
A run that must last searches the web for a query that the targets' SearXNG stand-in holds
until the test releases it (`held_run`): it is `running` for as long as the test needs, and
no test waits on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests import langgraph_api_servers as servers
from tests.langgraph_api_servers import (
    Api,
    error_body,
    events,
    held_run,
    human,
    last_text,
    parts,
    run_status,
    thread_status,
)

client = servers.client


async def new_thread(client: LangGraphClient) -> str:
    return (await client.threads.create())["thread_id"]


async def human_texts(client: LangGraphClient, thread_id: str) -> list[str]:
    values = (await client.threads.get_state(thread_id))["values"]
    assert isinstance(values, dict)
    return [str(m["content"]) for m in values["messages"] if m["type"] == "human"]


async def test_join_stream_follows_a_running_run(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    joined = asyncio.Event()

    async def on_response(response: httpx.Response) -> None:
        if response.url.path.endswith("/stream"):
            joined.set()

    client.http.client.event_hooks["response"].append(on_response)
    async with held_run(api, client, thread_id) as (run, hold):
        follow = asyncio.create_task(parts(client.runs.join_stream(thread_id, run["run_id"])))
        await joined.wait()
        hold.released.set()
        received = await follow
    # Joining sends what follows it (here the values after the search), without a metadata
    # event, and none of what came before it.
    assert set(events(received)) == {"values"}
    assert [m["type"] for m in received[0].data["messages"]] == ["human", "ai", "tool"]
    final = received[-1].data
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "tool", "ai"]
    assert final["messages"][2]["name"] == "searxng_search"
    assert last_text(final).startswith("Here is what I found:")
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"


async def test_join_stream_after_last_event_id_gives_only_what_followed(
    api: Api, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    query = f"held-{uuid.uuid4().hex}"
    hold = api.gate.hold(query)
    stream = client.runs.stream(
        thread_id,
        "agent",
        input=human(f"search for {query}"),
        stream_resumable=True,
        on_disconnect="continue",
    )
    assert isinstance(stream, AsyncGenerator)
    async with contextlib.aclosing(stream):
        first = await anext(stream)
    assert first.event == "metadata"
    assert first.id  # a resumable stream numbers its events
    run_id = first.data["run_id"]
    assert await hold.reached()
    hold.released.set()  # the run goes on without a listener
    rest = await parts(client.runs.join_stream(thread_id, run_id, last_event_id=first.id))
    assert "metadata" not in events(rest)
    assert rest
    assert all(part.id for part in rest)
    assert last_text(rest[-1].data).endswith(f"found {query}")
    later = await parts(client.runs.join_stream(thread_id, run_id, last_event_id=rest[0].id))
    assert [part.id for part in later] == [part.id for part in rest[1:]]


async def test_cancel_interrupt_keeps_the_progress(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    async with held_run(api, client, thread_id) as (run, _):
        await client.runs.cancel(thread_id, run["run_id"], action="interrupt", wait=True)
        assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
        # The reference's word for a thread whose run was cancelled.
        assert await thread_status(client, thread_id, "interrupted", "idle") == "interrupted"
        state = await client.threads.get_state(thread_id)
        assert state["next"] == ["tools"]  # stopped in the web search
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]  # type: ignore[call-overload]


async def test_cancel_rollback_forgets_the_run(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "agent", input=human("echo kept"))
    before = await client.threads.get_state(thread_id)
    async with held_run(api, client, thread_id) as (run, _):
        await client.runs.cancel(thread_id, run["run_id"], action="rollback", wait=True)
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await client.runs.get(thread_id, run["run_id"])
        assert "detail" in error_body(raised.value, 404)
        assert run["run_id"] not in {r["run_id"] for r in await client.runs.list(thread_id)}
        assert await thread_status(client, thread_id, "idle", "interrupted") == "idle"
        after = await client.threads.get_state(thread_id)
        assert after["values"] == before["values"]


async def test_reject_on_a_busy_thread_is_409(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    async with held_run(api, client, thread_id) as (run, hold):
        assert await thread_status(client, thread_id, "busy") == "busy"
        busy = await client.threads.search(status="busy", limit=100)
        assert thread_id in {t["thread_id"] for t in busy}
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await client.runs.create(
                thread_id, "agent", input=human("echo no"), multitask_strategy="reject"
            )
        assert "detail" in error_body(raised.value, 409)
        hold.released.set()
        await client.runs.join(thread_id, run["run_id"])
    assert len(await client.runs.list(thread_id)) == 1


async def test_enqueue_on_a_busy_thread_runs_after(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    async with held_run(api, client, thread_id) as (run, hold):
        queued = await client.runs.create(
            thread_id, "agent", input=human("echo next"), multitask_strategy="enqueue"
        )
        assert (await client.runs.get(thread_id, queued["run_id"]))["status"] == "pending"
        hold.released.set()
        output = await client.runs.join(thread_id, queued["run_id"])
    assert last_text(output) == "next"
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
    humans = [m["content"] for m in output["messages"] if m["type"] == "human"]
    assert humans[1] == "echo next"
    assert humans[0].startswith("search for held-")


async def test_interrupt_strategy_stops_the_busy_run_and_runs_the_new_one(
    api: Api, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    async with held_run(api, client, thread_id) as (run, _):
        second = await client.runs.create(
            thread_id, "agent", input=human("echo second"), multitask_strategy="interrupt"
        )
        output = await client.runs.join(thread_id, second["run_id"])
    assert last_text(output) == "second"
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
    texts = await human_texts(client, thread_id)
    assert texts[0].startswith("search for held-")  # the stopped run's progress stays
    assert texts[1:] == ["echo second"]
    statuses = [(r["run_id"], r["status"]) for r in await client.runs.list(thread_id)]
    assert statuses == [(second["run_id"], "success"), (run["run_id"], "interrupted")]


async def test_rollback_strategy_forgets_the_busy_run(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "agent", input=human("echo base"))
    async with held_run(api, client, thread_id) as (run, _):
        second = await client.runs.create(
            thread_id, "agent", input=human("echo second"), multitask_strategy="rollback"
        )
        output = await client.runs.join(thread_id, second["run_id"])
    assert last_text(output) == "second"
    assert await human_texts(client, thread_id) == ["echo base", "echo second"]
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await client.runs.get(thread_id, run["run_id"])
    assert "detail" in error_body(raised.value, 404)


async def test_on_disconnect_cancel_stops_the_run(api: Api, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    query = f"held-{uuid.uuid4().hex}"
    hold = api.gate.hold(query)
    try:
        stream = client.runs.stream(
            thread_id, "agent", input=human(f"search for {query}"), on_disconnect="cancel"
        )
        assert isinstance(stream, AsyncGenerator)
        async with contextlib.aclosing(stream):
            first = await anext(stream)
            assert await hold.reached()
        run_id = first.data["run_id"]
        status = await run_status(client, thread_id, run_id, "interrupted", "success", "error")
        assert status == "interrupted"
        assert await thread_status(client, thread_id, "interrupted", "idle") == "interrupted"
    finally:
        hold.released.set()
