"""The respond node and the tool-round budget, end to end through the graph."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from graph.context import Context
from nodes.respond import respond
from tests.factories import make_graph
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec


async def test_finish_reason_length_is_reported() -> None:
    truncated = AIMessage(content="cut", response_metadata={"finish_reason": "length"})
    update = await respond({"messages": [truncated], "route": "model"})
    assert update == {"finish_reason": "length"}


async def test_the_tool_budget_ends_the_turn_cleanly(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    # A model that keeps calling tools, even when none are offered any more.
    loop = Reply(tool_calls=[ToolCallSpec("echo", {"text": "again"})])
    primary.script(loop, loop, loop)
    deps = agent_deps(["openai:looper"], {"openai": primary.openai_base_url})
    graph = make_graph(deps)

    result = await graph.ainvoke(
        {"messages": [HumanMessage(content="loop")]},
        {"configurable": {"thread_id": "budget"}},
        context=Context(model="m", max_tool_rounds=1),
    )

    assert len(primary.requests) == 2
    assert "tools" in (primary.requests[0].body or {})
    assert "tools" not in (primary.requests[1].body or {})  # at the limit: answer, no tools
    messages = result["messages"]
    closing = [m for m in messages if isinstance(m, ToolMessage)][-1]
    assert closing.status == "error"
    assert "limit of 1 tool rounds" in str(closing.content)
    assert isinstance(messages[-1], AIMessage)
    assert "stopped after 1 rounds" in str(messages[-1].content)
    assert result["finish_reason"] == "stop"
    # Every tool call in the thread has its answer, so any provider accepts the history.
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    asked = {c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
    assert asked == answered
