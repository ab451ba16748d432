"""`langgraph dev` loads langgraph.json and runs our graph; driven with langgraph-sdk.

How the CLI is run (loopback, nothing leaving the machine, a temporary working directory)
is in `tests/langgraph_dev.py`, shared with the agent-chat-ui browser test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk import get_client

from graph.builder import build_graph
from tests.factories import make_deps
from tests.langgraph_dev import langgraph_dev_server


@pytest.fixture(scope="module")
def langgraph_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev --config langgraph.json` on a free loopback port; yields its URL."""
    with langgraph_dev_server(tmp_path_factory.mktemp("langgraph-dev")) as url:
        yield url


def last_text(output: dict[str, Any]) -> str:
    message = output["messages"][-1]
    assert message["type"] == "ai"
    return str(message["content"])


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


async def test_langgraph_dev_runs_the_graph_on_a_thread(langgraph_dev: str) -> None:
    async with get_client(url=langgraph_dev) as client:
        (assistant,) = await client.assistants.search(graph_id="agent")
        thread = await client.threads.create()

        first = await client.runs.wait(
            thread["thread_id"], "agent", input=human("What is 17 * 23?")
        )
        assert isinstance(first, dict)
        assert "391" in last_text(first)
        assert first["provider"] == "offline"
        assert [m["type"] for m in first["messages"]] == ["human", "ai", "tool", "ai"]
        assert first["messages"][2]["name"] == "calculator"

        second = await client.runs.wait(
            thread["thread_id"], assistant["assistant_id"], input=human("What did I say before?")
        )
        assert isinstance(second, dict)
        assert last_text(second) == 'Earlier you said: "What is 17 * 23?"'
        state = await client.threads.get_state(thread["thread_id"])
        assert isinstance(state["values"], dict)
        assert len(state["values"]["messages"]) == 6


async def test_langgraph_dev_runs_the_guard_node_with_the_run_context(langgraph_dev: str) -> None:
    async with get_client(url=langgraph_dev) as client:
        thread = await client.threads.create()
        output = await client.runs.wait(
            thread["thread_id"], "agent", input=human("x" * 80), context={"max_input_chars": 50}
        )
        assert isinstance(output, dict)
        assert last_text(output).startswith("Your message is too long for me to process: 80")
        assert output["route"] == "respond"
        assert output.get("provider") is None


async def test_langgraph_dev_loads_the_plugin_tool(langgraph_dev: str) -> None:
    async with get_client(url=langgraph_dev) as client:
        thread = await client.threads.create()
        output = await client.runs.wait(
            thread["thread_id"], "agent", input=human("use roll_dice count=2 sides=6 seed=3")
        )
        assert isinstance(output, dict)
        tool_result = output["messages"][2]
        assert tool_result["type"] == "tool"
        assert tool_result["name"] == "roll_dice"
        assert last_text(output) == tool_result["content"]
        assert last_text(output).startswith("Rolled 2d6: ")


async def test_langgraph_dev_draws_the_graph_the_builder_wires(langgraph_dev: str) -> None:
    expected = build_graph(lambda: make_deps(["offline"], {})).get_graph()
    async with get_client(url=langgraph_dev) as client:
        (assistant,) = await client.assistants.search(graph_id="agent")
        drawn = await client.assistants.get_graph(assistant["assistant_id"])
    assert {n["id"] for n in drawn["nodes"]} == set(expected.nodes)
    assert {(e["source"], e["target"]) for e in drawn["edges"]} == {
        (e.source, e.target) for e in expected.edges
    }
