"""The LangGraph API door's runs, driven by the real clients: langgraph-sdk and RemoteGraph.

The app is served on a loopback port with two aliases: `offline` (the default: the built-in
model, deterministic and instant) and `slow` (the fake provider, scripted to stream slowly),
for a run that must last while the test acts on it (a busy thread, a cancel, a client that
leaves). Tests wait on conditions (the provider's stream started, a disconnect, a status),
never on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Literal, cast

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from server.stores.graph_threads import ThreadRecords
from server.turns.registry import RunRegistry
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply

Serve = Callable[..., ServedApp]
PATIENCE = 15.0
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SLOW: dict[str, Any] = {"model": "slow"}


@pytest.fixture
def app(make_settings: SettingsFactory, primary: FakeUpstream, serve: Serve) -> ServedApp:
    settings = make_settings(
        agent_models={"offline": ["offline"], "slow": ["openai:gpt-slow"]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
        max_messages=4,
    )
    return serve(settings)


@contextlib.asynccontextmanager
async def sdk(app: ServedApp) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=app.url, api_key="unused") as client:
        yield client


def records(app: ServedApp) -> ThreadRecords:
    """The app's thread records (read in this process: the door's threads routes are not here)."""
    assert app.server is not None
    store: ThreadRecords = app.server.lifespan.state["agent"].graph_threads
    return store


def registry(app: ServedApp) -> RunRegistry:
    assert app.server is not None
    runs: RunRegistry = app.server.lifespan.state["agent"].runs
    return runs


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


def new_thread() -> str:
    return str(uuid.uuid4())


def slow_reply(upstream: FakeUpstream) -> None:
    """The next model call answers nothing for long (a test cancels it long before)."""
    upstream.script(Fault.hang(PATIENCE * 2))


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not within {PATIENCE} s"
        await asyncio.sleep(0.02)


async def called(upstream: FakeUpstream, count: int = 1) -> None:
    """Wait until the provider has received `count` requests."""

    async def seen() -> bool:
        return len(upstream.requests) >= count

    await until(seen, f"{count} model call(s)")


async def provider_left(upstream: FakeUpstream, count: int = 1) -> None:
    """Wait until `count` of the provider's answers were abandoned (their run cancelled)."""
    assert await asyncio.to_thread(upstream.wait_for_disconnects, count, PATIENCE)


async def status_of(client: LangGraphClient, thread: str, run_id: str, status: str) -> None:
    async def reached() -> bool:
        return (await client.runs.get(thread, run_id))["status"] == status

    await until(reached, f"run {run_id} {status}")


# --- streaming -------------------------------------------------------------------------------


async def test_a_streamed_run_opens_with_its_metadata_and_streams_every_mode(
    app: ServedApp,
) -> None:
    thread = new_thread()
    created: list[Any] = []
    async with sdk(app) as client:
        parts = [
            part
            async for part in client.runs.stream(
                thread,
                "agent",
                input=human("What is 17 * 23?"),
                stream_mode=["values", "messages-tuple", "updates", "custom", "debug", "tasks"],
                if_not_exists="create",
                on_run_created=created.append,
            )
        ]
    first = parts[0]
    assert first.event == "metadata"
    assert first.data == {"run_id": created[0]["run_id"], "attempt": 1}
    assert created[0]["thread_id"] == thread
    names = {part.event for part in parts}
    assert {"values", "messages", "updates", "debug", "tasks"} <= names
    tokens = [p.data[0]["content"] for p in parts if p.event == "messages"]
    assert "".join(tokens[-6:]).strip().endswith("17 * 23 = 391")  # token by token
    assert all(isinstance(p.data[1], dict) for p in parts if p.event == "messages")
    last = [p.data for p in parts if p.event == "values"][-1]
    assert last["messages"][-1]["content"] == "17 * 23 = 391"
    assert {"guard", "router"} <= {next(iter(p.data)) for p in parts if p.event == "updates"}
    record = await records(app).get(thread)
    assert record is not None
    assert record.metadata["graph_id"] == "agent"
    assert record.metadata["assistant_id"]
    assert record.status == "idle"


async def test_the_stream_names_the_run_and_numbers_its_frames(app: ServedApp) -> None:
    thread = new_thread()
    body = {"assistant_id": "agent", "input": human("hi"), "if_not_exists": "create"}
    async with (
        httpx.AsyncClient(base_url=app.url, timeout=PATIENCE) as http,
        http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as response,
    ):
        text = (await response.aread()).decode()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    location = response.headers["content-location"]
    assert location.startswith(f"/threads/{thread}/runs/")
    assert response.headers["location"] == f"{location}/stream"
    frames = [frame.splitlines() for frame in text.strip().split("\n\n")]
    assert frames[0][0] == "event: metadata"
    assert [frame[-1] for frame in frames] == [f"id: {n}" for n in range(len(frames))]


async def test_events_and_the_legacy_messages_mode_stream_together(app: ServedApp) -> None:
    async with sdk(app) as client:
        parts = [
            part
            async for part in client.runs.stream(
                None, "agent", input=human("What is 2 + 2?"), stream_mode=["events", "messages"]
            )
        ]
    names = [part.event for part in parts]
    assert {"messages/metadata", "messages/partial", "messages/complete"} <= set(names)
    kinds = {part.data["event"] for part in parts if part.event == "events"}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= kinds
    partial = [p.data[0]["content"] for p in parts if p.event == "messages/partial"]
    assert partial[-1] == "2 + 2 = 4"  # the message so far, growing


# --- waiting, background, join -------------------------------------------------------------


async def test_wait_background_join_get_and_list_on_one_thread(app: ServedApp) -> None:
    thread = new_thread()
    async with sdk(app) as client:
        output = await client.runs.wait(
            thread, "agent", input=human("What is 17 * 23?"), if_not_exists="create"
        )
        assert isinstance(output, dict)
        assert output["messages"][-1]["content"] == "17 * 23 = 391"
        run = await client.runs.create(thread, "agent", input=human("what did I say before?"))
        assert run["thread_id"] == thread
        assert run["status"] in ("pending", "running", "success")
        joined = await client.runs.join(thread, run["run_id"])
        assert isinstance(joined, dict)
        assert joined["messages"][-1]["content"] == 'Earlier you said: "What is 17 * 23?"'
        got = await client.runs.get(thread, run["run_id"])
        assert got["status"] == "success"
        assert cast(dict[str, Any], got)["kwargs"]["input"] == human("what did I say before?")
        listed = await client.runs.list(thread)
        assert listed[0]["run_id"] == run["run_id"]
        assert [r["status"] for r in listed] == ["success", "success"]
        stateless = await client.runs.wait(None, "agent", input=human("What is 6 * 7?"))
        assert isinstance(stateless, dict)
        assert stateless["messages"][-1]["content"] == "6 * 7 = 42"
        # A stateless background run: read by the thread id its Run names, which stores nothing.
        background = await client.runs.create(None, "agent", input=human("What is 6 * 8?"))
        named = background["thread_id"]
        assert named not in (None, thread)
        joined = await client.runs.join(named, background["run_id"])
        assert isinstance(joined, dict)
        assert joined["messages"][-1]["content"] == "6 * 8 = 48"
        assert [r["run_id"] for r in await client.runs.list(named)] == [background["run_id"]]
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await client.threads.get(named)
        assert raised.value.response.status_code == 404


async def test_unknown_threads_runs_and_assistants_are_404_and_a_bad_body_422(
    app: ServedApp,
) -> None:
    async with sdk(app) as client:
        with pytest.raises(httpx.HTTPStatusError) as unknown_thread:
            await client.runs.wait(new_thread(), "agent", input=human("hi"))
        with pytest.raises(httpx.HTTPStatusError) as unknown_assistant:
            await client.runs.wait(None, "nope", input=human("hi"))
        thread = new_thread()
        await client.runs.wait(thread, "agent", input=human("hi"), if_not_exists="create")
        with pytest.raises(httpx.HTTPStatusError) as unknown_run:
            await client.runs.get(thread, str(uuid.uuid4()))
    for error in (unknown_thread, unknown_assistant, unknown_run):
        assert error.value.response.status_code == 404
        assert "detail" in error.value.response.json()
    async with httpx.AsyncClient(base_url=app.url) as http:
        bad = await http.post("/runs/wait", json={"input": human("hi")})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][-1] == "assistant_id"


async def test_admission_refuses_before_any_byte_in_the_doors_shape(app: ServedApp) -> None:
    messages = {"messages": [{"type": "human", "content": str(n)} for n in range(5)]}
    body = {"assistant_id": "agent", "input": messages, "if_not_exists": "create"}
    async with httpx.AsyncClient(base_url=app.url) as http:
        response = await http.post(f"/threads/{new_thread()}/runs/stream", json=body)
        unknown_model = await http.post(
            "/runs/stream",
            json={"assistant_id": "agent", "input": human("hi"), "context": {"model": "nope"}},
        )
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_messages"
    assert response.headers["content-type"] == "application/json"
    assert unknown_model.status_code == 404
    assert unknown_model.json()["code"] == "model_not_found"


# --- interrupts ------------------------------------------------------------------------------


async def test_a_paused_run_carries_interrupt_and_a_command_resumes_it(app: ServedApp) -> None:
    thread = new_thread()
    context: dict[str, Any] = {"client_tools": [WEATHER]}
    async with sdk(app) as client:
        parts = [
            part
            async for part in client.runs.stream(
                thread,
                "agent",
                input=human("use get_weather city=Paris"),
                context=context,
                stream_mode=["values", "updates"],
                if_not_exists="create",
            )
        ]
        values = [p.data for p in parts if p.event == "values"][-1]
        (interrupt,) = values["__interrupt__"]
        (call,) = interrupt["value"]["tool_calls"]
        assert call["args"] == {"city": "Paris"}
        assert any("__interrupt__" in p.data for p in parts if p.event == "updates")
        record = await records(app).get(thread)
        assert record is not None
        assert record.status == "interrupted"
        output = await client.runs.wait(
            thread, "agent", command={"resume": {call["id"]: "sunny"}}, context=context
        )
    assert isinstance(output, dict)
    assert output["messages"][-1]["content"] == "sunny"
    assert "__interrupt__" not in output
    record = await records(app).get(thread)
    assert record is not None
    assert record.status == "idle"


async def test_remote_graph_streams_a_pause_and_resumes_with_a_command(app: ServedApp) -> None:
    config: Any = {"configurable": {"thread_id": new_thread()}}
    context: dict[str, Any] = {"client_tools": [WEATHER]}
    async with sdk(app) as client:
        remote = RemoteGraph("agent", client=client)
        updates = [
            chunk
            async for chunk in remote.astream(
                human("use get_weather city=Oslo"), config, context=context, stream_mode="updates"
            )
        ]
        assert "__interrupt__" in updates[-1]
        (interrupt,) = updates[-1]["__interrupt__"]
        call = interrupt["value"]["tool_calls"][0]  # as LangGraph Server's clients get it
        output = await remote.ainvoke(
            Command(resume={call["id"]: "rainy"}), config, context=context
        )
    assert output["messages"][-1]["content"] == "rainy"


async def test_a_run_from_an_earlier_checkpoint_forks_the_thread(app: ServedApp) -> None:
    thread = new_thread()
    async with sdk(app) as client:
        parts = [
            part
            async for part in client.runs.stream(
                thread,
                "agent",
                input=human("What is 2 + 2?"),
                stream_mode="checkpoints",
                if_not_exists="create",
            )
        ]
        after_first = parts[-1].data["config"]["configurable"]["checkpoint_id"]
        await client.runs.wait(thread, "agent", input=human("What is 3 + 3?"))
        forked = await client.runs.wait(
            thread, "agent", input=human("what did I say before?"), checkpoint_id=after_first
        )
    assert isinstance(forked, dict)
    texts = [m["content"] for m in forked["messages"] if m["type"] == "human"]
    assert texts == ["What is 2 + 2?", "what did I say before?"]


# --- busy threads, cancel, disconnect --------------------------------------------------------


async def test_a_busy_thread_is_a_409_before_any_byte_and_cancel_stops_the_provider(
    app: ServedApp, primary: FakeUpstream
) -> None:
    thread = new_thread()
    slow_reply(primary)
    async with sdk(app) as client:
        run = await client.runs.create(
            thread, "agent", input=human("tell me a long story"), context=SLOW,
            if_not_exists="create",
        )  # fmt: skip
        await called(primary)
        with pytest.raises(httpx.HTTPStatusError) as busy:
            await client.runs.wait(thread, "agent", input=human("again"))
        assert busy.value.response.status_code == 409
        assert busy.value.response.json()["code"] == "thread_busy"
        record = await records(app).get(thread)
        assert record is not None
        assert record.status == "busy"
        await client.runs.cancel(thread, run["run_id"], wait=True)
        await provider_left(primary)
        assert (await client.runs.get(thread, run["run_id"]))["status"] == "interrupted"
        record = await records(app).get(thread)
        assert record is not None
        assert record.status == "interrupted"  # LangGraph Server's word for a stopped run
        output = await client.runs.wait(thread, "agent", input=human("What is 1 + 1?"))
    assert isinstance(output, dict)
    assert output["messages"][-1]["content"] == "1 + 1 = 2"


async def test_enqueue_runs_after_the_current_run_in_order(
    app: ServedApp, primary: FakeUpstream
) -> None:
    thread = new_thread()
    primary.script(Fault.hang(1.5))  # then "late"
    async with sdk(app) as client:
        first = await client.runs.create(
            thread, "agent", input=human("first"), context=SLOW, if_not_exists="create"
        )
        await called(primary)
        second = await client.runs.create(
            thread, "agent", input=human("What is 5 * 5?"), multitask_strategy="enqueue"
        )
        assert second["status"] == "pending"  # queued behind the first
        output = await client.runs.join(thread, second["run_id"])
        assert (await client.runs.get(thread, first["run_id"]))["status"] == "success"
    assert isinstance(output, dict)
    humans = [m["content"] for m in output["messages"] if m["type"] == "human"]
    assert humans == ["first", "What is 5 * 5?"]
    assert output["messages"][-1]["content"] == "5 * 5 = 25"


async def test_a_queued_run_refused_when_it_opens_ends_with_an_error_event(
    app: ServedApp, primary: FakeUpstream
) -> None:
    thread = new_thread()
    primary.script(Fault.hang(1.5))  # then "late"
    gone = "1f000000-0000-6000-8000-000000000000"  # a checkpoint the thread never had
    async with sdk(app) as client:
        first = await client.runs.create(
            thread, "agent", input=human("first"), context=SLOW, if_not_exists="create"
        )
        await called(primary)
        # Queued, its request is answered (the Run) before the kit sees the checkpoint.
        queued = await client.runs.create(
            thread, "agent", input=human("second"), checkpoint_id=gone,
            multitask_strategy="enqueue",
        )  # fmt: skip
        assert queued["status"] == "pending"
        output = await client.runs.join(thread, queued["run_id"])
        received = [
            (part.event, part.data)
            async for part in client.runs.join_stream(thread, queued["run_id"], last_event_id="0")
        ]
        assert (await client.runs.get(thread, queued["run_id"]))["status"] == "error"
        assert (await client.runs.get(thread, first["run_id"]))["status"] == "success"
        thread_record = await client.threads.get(thread)
    assert isinstance(output, dict)
    assert output["__error__"]["error"] == "checkpoint_not_found"
    assert output["__error__"]["message"]
    assert received == [("error", output["__error__"])]
    assert thread_record["status"] == "idle"  # the first run's end: the refused one never ran


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_interrupt_keeps_the_cancelled_runs_work_and_rollback_discards_it(
    app: ServedApp, primary: FakeUpstream, strategy: Literal["interrupt", "rollback"]
) -> None:
    thread = new_thread()
    async with sdk(app) as client:
        await client.runs.wait(
            thread, "agent", input=human("What is 2 + 2?"), if_not_exists="create"
        )
        slow_reply(primary)
        first = await client.runs.create(thread, "agent", input=human("story"), context=SLOW)
        await called(primary)
        output = await client.runs.wait(
            thread, "agent", input=human("What is 3 + 3?"), multitask_strategy=strategy
        )
        await provider_left(primary)
        runs = [(r["run_id"], r["status"]) for r in await client.runs.list(thread)]
    assert isinstance(output, dict)
    assert runs[0][1] == "success"
    if strategy == "interrupt":
        assert runs[1] == (first["run_id"], "interrupted")
    else:  # forgotten, as LangGraph Server deletes a rolled back run
        assert first["run_id"] not in {run_id for run_id, _ in runs}
    humans = [m["content"] for m in output["messages"] if m["type"] == "human"]
    kept = ["story"] if strategy == "interrupt" else []
    assert humans == ["What is 2 + 2?", *kept, "What is 3 + 3?"]


async def test_a_client_that_leaves_cancels_the_run_unless_it_continues(
    app: ServedApp, primary: FakeUpstream
) -> None:
    async with sdk(app) as client:
        leaving: tuple[Literal["cancel", "continue"], ...] = ("cancel", "continue")
        for left, on_disconnect in enumerate(leaving, start=1):
            thread = new_thread()
            created: list[Any] = []
            primary.script(Fault.hang(PATIENCE * 2 if on_disconnect == "cancel" else 1.0))
            stream = client.runs.stream(
                thread, "agent", input=human("long"), context=SLOW, if_not_exists="create",
                on_disconnect=on_disconnect, on_run_created=created.append,
            )  # fmt: skip
            async for part in stream:
                if part.event == "metadata":
                    await called(primary, left)  # the model call is under way
                    break  # then the client leaves
            await cast(AsyncGenerator[Any, None], stream).aclose()
            run_id = created[0]["run_id"]
            if on_disconnect == "cancel":
                await provider_left(primary, left)
                await status_of(client, thread, run_id, "interrupted")
            else:
                output = await client.runs.join(thread, run_id)
                assert isinstance(output, dict)
                assert output["messages"][-1]["content"] == "late"
                assert (await client.runs.get(thread, run_id))["status"] == "success"


async def test_joining_the_stream_again_gives_what_followed_the_last_event(
    app: ServedApp, primary: FakeUpstream
) -> None:
    thread = new_thread()
    primary.script(Reply("tick " * 20))
    async with sdk(app) as client:
        run = await client.runs.create(
            thread, "agent", input=human("tick"), context=SLOW, if_not_exists="create",
            stream_mode=["values", "messages-tuple"],
        )  # fmt: skip
        # From `Last-Event-ID: 0` on: every event but the first (a joiner without one gets
        # only what follows its joining, as from LangGraph Server).
        joined = [
            part async for part in client.runs.join_stream(thread, run["run_id"], last_event_id="0")
        ]
        rest = [
            part async for part in client.runs.join_stream(thread, run["run_id"], last_event_id="3")
        ]
    # The metadata went to the request that started the run: a joiner gets what follows.
    assert "metadata" not in {part.event for part in joined}
    assert [part.id for part in joined][:3] == ["1", "2", "3"]
    assert [(p.id, p.event, p.data) for p in rest] == [(p.id, p.event, p.data) for p in joined[3:]]
    assert registry(app).get("anonymous", run["run_id"]) is not None


async def test_a_run_writes_its_checkpoints_as_the_client_asks(app: ServedApp) -> None:
    async def checkpoints(durability: Literal["async", "exit"] | None) -> int:
        thread = new_thread()
        async with sdk(app) as client:
            await client.runs.wait(
                thread, "agent", input=human("What is 2 + 2?"), if_not_exists="create",
                durability=durability,
            )  # fmt: skip
        graph = app.server.lifespan.state["agent"].graph  # type: ignore[union-attr]
        config: Any = {"configurable": {"thread_id": thread}}
        return len([snapshot async for snapshot in graph.aget_state_history(config)])

    assert await checkpoints("exit") <= 2  # once, at the end
    assert await checkpoints("async") >= 5  # after every step
    assert await checkpoints(None) >= 5  # LangGraph Server's default, not CHECKPOINT_DURABILITY


async def test_a_thread_started_on_v1_continues_here_and_back(app: ServedApp) -> None:
    thread = f"v1-{uuid.uuid4().hex}"
    chat = {"model": "offline", "messages": [{"role": "user", "content": "What is 4 * 4?"}]}
    async with httpx.AsyncClient(base_url=app.url, timeout=PATIENCE) as http:
        first = await http.post("/v1/chat/completions", json=chat, headers={"x-thread-id": thread})
        assert first.status_code == 200, first.text
        async with sdk(app) as client:
            output = await client.runs.wait(thread, "agent", input=human("what did I say before?"))
        assert isinstance(output, dict)
        assert output["messages"][-1]["content"] == 'Earlier you said: "What is 4 * 4?"'
        again = {**chat, "messages": [{"role": "user", "content": "my previous message?"}]}
        back = await http.post("/v1/chat/completions", json=again, headers={"x-thread-id": thread})
    assert back.status_code == 200, back.text
    answer = back.json()["choices"][0]["message"]["content"]
    assert "what did I say before?" in answer  # the message sent on this door
    record = await records(app).get(thread)
    assert record is not None
    assert record.metadata["graph_id"] == "agent"
