"""The LangServe door at /agent, driven by LangServe's own `RemoteRunnable` over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langserve import RemoteRunnable

from server.auth import digest
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.helpers import AgentRunnable, thread_messages

Serve = Callable[[Settings], ServedApp]


def turn(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def on_thread(thread_id: str, **configurable: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, **configurable}}


def agent(app: ServedApp, **headers: str) -> AgentRunnable:
    return RemoteRunnable(f"{app.url}/agent/", headers=headers or None)


def in_order(seen: list[Any], expected: list[Any]) -> bool:
    """`expected` appears in `seen` in this order, possibly with other items in between."""
    remaining = iter(seen)
    return all(item in remaining for item in expected)


def answer(output: dict[str, Any]) -> str:
    last = output["messages"][-1]
    assert isinstance(last, AIMessage)
    return str(last.content)


def test_invoke_runs_the_graph_with_real_tool_calls(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    output = agent(serve(make_settings())).invoke(turn("What is 17 * 23?"))

    assert answer(output) == "17 * 23 = 391"
    kinds = [type(m) for m in output["messages"]]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert output["messages"][1].tool_calls[0]["name"] == "calculator"
    assert output["provider"] == "offline"
    assert output["route"] == "model"
    assert output["finish_reason"] == "stop"
    assert output["usage"]["total_tokens"] > 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """Default settings on each checkpointer; PostgreSQL gets a fresh database."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("postgres_url"))
    return make_settings()


def test_two_turns_on_a_thread_remember_and_reach_the_checkpointer(
    store_settings: Settings, serve: Serve
) -> None:
    settings = store_settings
    app = serve(settings)
    runnable = agent(app)

    assert answer(runnable.invoke(turn("echo pineapple"), on_thread("fruit"))) == "pineapple"
    second = runnable.invoke(turn("What did I say before?"), on_thread("fruit"))

    assert answer(second) == 'Earlier you said: "echo pineapple"'
    # Without the thread the same question has no past: memory is the thread's, not luck.
    alone = runnable.invoke(turn("What did I say before?"))
    assert "first message of our conversation" in answer(alone)

    history = httpx.get(f"{app.url}/agent/threads/fruit/history").json()["checkpoints"]
    assert history[0]["messages"] == 6
    assert history[0]["last_message"]["text"] == 'Earlier you said: "echo pineapple"'
    # One checkpoint per turn (CHECKPOINT_DURABILITY=exit), naming every node the turn ran:
    # the known ones in this order, whatever node a developer adds between them.
    writers = [c["written_by"] for c in reversed(history)]
    assert len(writers) == 2
    first, second = writers
    assert in_order(
        first, ["__start__", "guard", "router", "compact", "fallback_provider", "tools", "respond"]
    )
    assert in_order(second, ["__start__", "guard", "router", "compact", "fallback_provider"])
    assert second[-1] == "respond"
    assert "tools" not in second  # the recall needs no tool
    assert [c["messages"] for c in reversed(history)] == [4, 6]


@pytest.mark.postgres
def test_a_checkpoint_after_every_step_when_asked(
    make_settings: SettingsFactory, serve: Serve, postgres_url: str
) -> None:
    app = serve(make_settings(database_url=postgres_url, checkpoint_durability="async"))
    runnable = agent(app)
    runnable.invoke(turn("echo pineapple"), on_thread("steps"))
    runnable.invoke(turn("What did I say before?"), on_thread("steps"))

    history = httpx.get(f"{app.url}/agent/threads/steps/history").json()["checkpoints"]
    assert history[0]["written_by"] == ["respond"]
    writers = [c["written_by"] for c in reversed(history)]
    assert writers[:2] == [["__input__"], ["__start__"]]
    assert in_order(writers, [["guard"], ["router"], ["tools"], ["respond"]])
    assert [c["source"] for c in history].count("input") == 2  # one input per turn


async def test_thread_id_from_the_header_and_stateless_without_one(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings()
    app = serve(settings)

    await agent(app, **{"X-Thread-Id": "from-header"}).ainvoke(turn("echo via header"))
    stored = await thread_messages(settings, "from-header")
    assert [m.content for m in stored if isinstance(m, HumanMessage)] == ["echo via header"]

    # The config wins over the header when both name a thread.
    both = agent(app, **{"X-Thread-Id": "from-header"})
    await both.ainvoke(turn("echo via config"), on_thread("from-config"))
    assert len(await thread_messages(settings, "from-config")) == 4
    assert len(await thread_messages(settings, "from-header")) == 4

    await agent(app).ainvoke(turn("echo nothing stored"))
    response = httpx.get(f"{app.url}/agent/threads/from-nothing/state")
    assert response.status_code == 404


def test_batch_runs_each_input_on_its_own_thread(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    configs = [on_thread("b1"), on_thread("b2")]
    # A config per input: langserve annotates `batch`'s config as a single one.
    outputs = agent(app).batch([turn("echo one"), turn("What is 2 + 3?")], configs)  # type: ignore[arg-type]
    assert [answer(o) for o in outputs] == ["one", "2 + 3 = 5"]
    for thread, count in (("b1", 4), ("b2", 4)):
        state = httpx.get(f"{app.url}/agent/threads/{thread}/state").json()
        assert len(state["values"]["messages"]) == count


def test_stream_yields_each_node_update(make_settings: SettingsFactory, serve: Serve) -> None:
    chunks = list(agent(serve(make_settings())).stream(turn("What is 6 * 7?")))

    assert all(len(chunk) == 1 for chunk in chunks)  # one {node: update} per step
    nodes = [next(iter(chunk)) for chunk in chunks]
    # The path of a tool-using turn; other nodes may run in between.
    path = ["guard", "router", "fallback_provider", "tools", "fallback_provider", "respond"]
    assert in_order(nodes, path)
    assert nodes[-1] == "respond"
    updates = {node: [c[node] for c in chunks if node in c] for node in nodes}
    (router,) = updates["router"]
    assert router["route"] == "model"
    assert "calculator" in router["tools_offered"]
    (tools,) = updates["tools"]
    assert tools["messages"][0].content == "42"
    assert updates["fallback_provider"][-1]["provider"] == "offline"


async def test_stream_events_shows_nodes_tools_and_model_tokens(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    runnable = agent(serve(make_settings()))
    events = [e async for e in runnable.astream_events(turn("echo streamed words"), version="v2")]

    started = [(e["event"], e["name"]) for e in events if e["event"].endswith("_start")]
    assert ("on_chain_start", "router") in started
    assert ("on_tool_start", "echo") in started
    assert ("on_chat_model_start", "OfflineChatModel") in started
    tokens = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(str(t) for t in tokens) == "streamed words"
    assert events[-1]["event"] == "on_chain_end"
    assert events[-1]["data"]["output"]["messages"][-1].content == "streamed words"


def test_a_checkpoint_id_branches_the_thread(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    runnable = agent(app)
    runnable.invoke(turn("echo first"), on_thread("branchy"))
    runnable.invoke(turn("echo second"), on_thread("branchy"))
    history = httpx.get(f"{app.url}/agent/threads/branchy/history").json()["checkpoints"]
    end_of_first_turn = next(
        c for c in history if "respond" in c["written_by"] and c["messages"] == 4
    )

    branch = runnable.invoke(
        turn("What did I say?"),
        on_thread("branchy", checkpoint_id=end_of_first_turn["checkpoint_id"]),
    )

    assert answer(branch) == 'Earlier you said: "echo first"'  # "echo second" is not on it
    state = httpx.get(f"{app.url}/agent/threads/branchy/state").json()
    assert state["parent_checkpoint_id"] is not None
    assert state["values"]["messages"][-1]["content"] == 'Earlier you said: "echo first"'


def test_a_resent_conversation_adds_only_the_new_turn(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-x"]},
        openai_base_url=primary.openai_base_url,
        openai_api_key="k",
    )
    primary.script(Reply("Hello Ada."), Reply("Your name is Ada."))
    runnable = agent(serve(settings))

    runnable.invoke(turn("My name is Ada."), on_thread("ada"))
    # The playground resends everything it shows; the thread must not get duplicates.
    resent = [HumanMessage("My name is Ada."), AIMessage(""), HumanMessage("What is my name?")]
    output = runnable.invoke({"messages": resent}, on_thread("ada"))

    assert answer(output) == "Your name is Ada."
    sent = primary.requests[1].body
    assert sent is not None
    seen = [(m["role"], m.get("content")) for m in sent["messages"]]
    assert [s for s in seen if s[0] != "system"] == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
    ]


def test_an_edited_earlier_message_forks_the_thread_as_on_v1(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-x"]},
        openai_base_url=primary.openai_base_url,
        openai_api_key="k",
    )
    primary.script(Reply("Hello Ada."), Reply("You like tea."), Reply("You like coffee."))
    app = serve(settings)
    runnable = agent(app)
    runnable.invoke(turn("My name is Ada."), on_thread("edit"))
    runnable.invoke(turn("I like tea. What do I like?"), on_thread("edit"))

    # The playground's user edits their second message: it resends the conversation to there.
    edited = [HumanMessage("My name is Ada."), AIMessage(""), HumanMessage("I like coffee.")]
    output = runnable.invoke({"messages": edited}, on_thread("edit"))

    assert answer(output) == "You like coffee."
    sent = primary.requests[2].body
    assert sent is not None
    seen = [(m["role"], m.get("content")) for m in sent["messages"]]
    assert [s for s in seen if s[0] != "system"] == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "I like coffee."),
    ]
    assert [m.content for m in output["messages"]] == [
        "My name is Ada.",
        "Hello Ada.",
        "I like coffee.",
        "You like coffee.",
    ]
    # The old branch is still in the thread's history, to go back to.
    history = httpx.get(f"{app.url}/agent/threads/edit/history").json()["checkpoints"]
    assert any(c["last_message"]["text"] == "You like tea." for c in history)


def test_a_turn_with_nothing_to_answer_is_answered_by_the_graph_even_when_streamed(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    """LangServe has started its stream when the run is prepared: no error, the graph answers."""
    runnable = agent(serve(make_settings()))
    nothing_new = {"messages": [AIMessage("an answer, and no question")]}

    updates = list(runnable.stream(nothing_new, on_thread("nothing-new")))
    invoked = runnable.invoke(nothing_new)

    routed = next(u["router"] for u in updates if "router" in u)
    assert (routed["route"], routed["route_reason"]) == ("respond", "no_user_message")
    assert invoked["route"] == "respond"


def test_api_keys_guard_the_door_and_namespace_threads(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings(api_keys=["sk-alice", "sk-bob"])
    app = serve(settings)

    with pytest.raises(httpx.HTTPStatusError) as refused:
        agent(app).invoke(turn("echo hi"))
    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["error"]["code"] == "missing_api_key"
    for path in ("input_schema", "playground/", "threads/t/history"):
        assert httpx.get(f"{app.url}/agent/{path}").status_code == 401

    alice = agent(app, Authorization="Bearer sk-alice")
    bob = agent(app, Authorization="Bearer sk-bob")
    alice.invoke(turn("echo secret of alice"), on_thread("shared-name"))
    reply = bob.invoke(turn("What did I say?"), on_thread("shared-name"))
    assert "first message of our conversation" in answer(reply)  # bob's own thread

    bearer = {"Authorization": "Bearer sk-alice"}
    seen = httpx.get(f"{app.url}/agent/threads/shared-name/history", headers=bearer)
    assert seen.status_code == 200
    assert seen.json()["thread_id"] == "shared-name"
    stranger = httpx.get(
        f"{app.url}/agent/threads/never-made/state", headers={"Authorization": "Bearer sk-bob"}
    )
    assert stranger.status_code == 404
    assert stranger.json()["error"] == {
        "message": "No thread found with id 'never-made'.",
        "type": "not_found_error",
        "param": "thread_id",
        "code": "thread_not_found",
    }


async def test_threads_are_stored_under_the_key_namespace(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings(api_keys=["sk-alice"])
    app = serve(settings)
    alice = agent(app, Authorization="Bearer sk-alice")
    await alice.ainvoke(turn("echo mine"), on_thread("t"))

    assert await thread_messages(settings, "t") == []
    stored = await thread_messages(settings, f"{digest('sk-alice')[:16]}:t")
    assert stored[0].content == "echo mine"


def test_schemas_publish_the_thread_config_and_the_messages_input(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    config = httpx.get(f"{app.url}/agent/config_schema").json()
    fields = config["$defs"]["Configurable"]["properties"]
    assert set(fields) == {"thread_id", "checkpoint_id", "model"}
    input_schema = httpx.get(f"{app.url}/agent/input_schema").json()
    turn_schema = input_schema["$defs"][input_schema["$ref"].rsplit("/", 1)[-1]]
    assert turn_schema["required"] == ["messages"]
    assert turn_schema["properties"]["messages"]["extra"]["widget"]["type"] == "chat"
    output_schema = httpx.get(f"{app.url}/agent/output_schema").json()
    assert {"messages", "provider", "usage", "finish_reason"} <= set(output_schema["properties"])


def test_an_unknown_model_alias_is_a_404_in_openai_shape(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    response = httpx.post(
        f"{app.url}/agent/invoke",
        json={
            "input": {"messages": [{"type": "human", "content": "hi"}]},
            "config": {"configurable": {"model": "nope"}},
        },
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_a_checkpoint_id_without_a_thread_is_a_400(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    response = httpx.post(
        f"{app.url}/agent/invoke",
        json={
            "input": {"messages": [{"type": "human", "content": "hi"}]},
            "config": {"configurable": {"checkpoint_id": "1f0"}},
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "config.configurable.checkpoint_id"


def test_a_thread_running_on_v1_is_409_on_agent(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        make_settings(agent_models={"m": ["openai:gpt-x"]}, openai_base_url=primary.openai_base_url)
    )
    primary.script(Reply("slow " * 20, chunk_delay=0.05), Reply("now free"))
    with httpx.stream(
        "POST",
        f"{app.url}/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a"}]},
        headers={"X-Thread-Id": "both-doors"},
        timeout=10,
    ) as streaming:
        lines = streaming.iter_lines()
        next(lines)  # /v1 is running the thread
        busy = httpx.post(
            f"{app.url}/agent/invoke",
            json={"input": {"messages": [{"type": "human", "content": "b"}]}},
            headers={"X-Thread-Id": "both-doors"},
        )
        assert "data: [DONE]" in list(lines)
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "thread_busy"
    assert answer(agent(app).invoke(turn("b"), on_thread("both-doors"))) == "now free"
