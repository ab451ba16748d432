"""The guard node refuses an over-long turn before any provider is called."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import build_graph
from graph.context import Context
from nodes.guard import refusal_text, turn_chars
from tests.fakes.upstream import FakeUpstream, Reply


def _graph(agent_deps: Any, primary: FakeUpstream) -> Any:
    deps = agent_deps(["openai:gpt-test"], {"openai": primary.openai_base_url})
    return build_graph(lambda: deps, checkpointer=InMemorySaver())


async def test_an_over_long_turn_is_refused_without_calling_the_provider(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    graph = _graph(agent_deps, primary)
    config = {"configurable": {"thread_id": "long"}}
    output = await graph.ainvoke(
        {"messages": [HumanMessage("x" * 101)]}, config, context=Context(max_input_chars=100)
    )
    assert primary.requests == []  # no model saw it
    assert output["messages"][-1].content == refusal_text(101, 100)
    assert output["finish_reason"] == "stop"
    assert output["route"] == "respond"
    assert output["usage"]["total_tokens"] == 0
    state = await graph.aget_state(config)
    assert state.values["route_reason"] == "input_too_long"
    assert [m.type for m in state.values["messages"]] == ["human", "ai"]


async def test_a_turn_within_the_limit_reaches_the_model(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    primary.script(Reply("fine"))
    graph = _graph(agent_deps, primary)
    output = await graph.ainvoke(
        {"messages": [HumanMessage("x" * 100)]},
        {"configurable": {"thread_id": "ok"}},
        context=Context(max_input_chars=100),
    )
    assert len(primary.requests) == 1
    assert output["messages"][-1].content == "fine"


def test_only_the_new_turn_counts_not_the_history() -> None:
    history = [HumanMessage("a" * 500), AIMessage("ok"), HumanMessage("abc"), HumanMessage("de")]
    assert turn_chars(history) == 5
    assert turn_chars([]) == 0


async def test_a_refused_turn_does_not_refuse_the_next_one_on_the_thread(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    primary.script(Reply("back to normal"))
    graph = _graph(agent_deps, primary)
    config = {"configurable": {"thread_id": "twice"}}
    limit = Context(max_input_chars=10)
    await graph.ainvoke({"messages": [HumanMessage("x" * 11)]}, config, context=limit)
    output = await graph.ainvoke({"messages": [HumanMessage("short")]}, config, context=limit)
    assert len(primary.requests) == 1
    assert output["messages"][-1].content == "back to normal"
    assert output["route"] == "model"
