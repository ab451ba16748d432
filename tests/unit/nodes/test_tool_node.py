"""The tools node: concurrency, timeouts, output caps and the tool-error policy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage, ToolCall
from langchain_core.tools import StructuredTool
from langgraph.runtime import Runtime

from graph.context import Context
from graph.errors import ToolInputError
from graph.state import State
from nodes.tool_node import cap_output, run_tool_call
from nodes.tools import ToolRegistry
from nodes.tools.scope import scoped_artifact
from tests.factories import make_deps

NO_CONTEXT: Runtime[Context] = Runtime()
"""LangGraph's runtime of a run given no context (its context is None by default)."""


def call(name: str, **args: object) -> ToolCall:
    return ToolCall(name=name, args=dict(args), id=f"call-{name}")


def make_tool(name: str, coroutine: Callable[..., Awaitable[Any]]) -> StructuredTool:
    return StructuredTool.from_function(coroutine=coroutine, name=name, description=name)


async def test_a_slow_tool_times_out_into_an_error_message() -> None:
    async def slow(text: str) -> str:
        await asyncio.sleep(10)
        return text

    result = await run_tool_call(
        make_tool("slow", slow), call("slow", text="x"), time_limit=0.05, max_chars=100
    )

    assert result.status == "error"
    assert "did not finish within 0.05 seconds" in str(result.content)


async def test_named_tool_errors_become_messages_and_others_propagate() -> None:
    async def picky(text: str) -> str:
        raise ToolInputError(f"cannot use {text!r}")

    picked = await run_tool_call(
        make_tool("picky", picky), call("picky", text="x"), time_limit=1, max_chars=100
    )
    assert picked.status == "error"
    assert "cannot use 'x'" in str(picked.content)

    async def buggy(text: str) -> str:
        raise KeyError(text)

    raised = False
    try:
        await run_tool_call(
            make_tool("buggy", buggy), call("buggy", text="x"), time_limit=1, max_chars=100
        )
    except KeyError:
        raised = True
    assert raised


async def test_bad_arguments_and_unknown_tools_are_reported() -> None:
    async def typed(count: int) -> str:
        return str(count)

    bad = await run_tool_call(
        make_tool("typed", typed), call("typed", count="many"), time_limit=1, max_chars=100
    )
    assert bad.status == "error"
    assert "invalid arguments" in str(bad.content)

    missing = await run_tool_call(None, call("ghost"), time_limit=1, max_chars=100)
    assert missing.status == "error"
    assert "no tool named 'ghost'" in str(missing.content)


def test_cap_output() -> None:
    assert cap_output("short", 10) == "short"
    capped = cap_output("x" * 50, 10)
    assert capped.startswith("x" * 10)
    assert "40 more characters" in capped


async def test_tool_calls_of_one_turn_run_concurrently() -> None:
    # Each tool waits for the other to start: run one after the other, they would deadlock.
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def wait_for_partner(me: str, partner: str) -> str:
        started[me].set()
        await asyncio.wait_for(started[partner].wait(), timeout=2)
        return f"{me} done"

    deps = make_deps(["offline"], {})
    deps.tools = ToolRegistry()
    deps.tools.register(make_tool("a", lambda: wait_for_partner("a", "b")))
    deps.tools.register(make_tool("b", lambda: wait_for_partner("b", "a")))
    from nodes.tool_node import make_tool_node

    node = make_tool_node(lambda: deps)
    message = AIMessage(content="", tool_calls=[call("a"), call("b")])

    update = await node(
        {"messages": [message], "tools_offered": ["a", "b"], "tool_rounds": 0},
        runtime=NO_CONTEXT,
    )

    assert [m.content for m in update["messages"]] == ["a done", "b done"]
    assert all(m.status == "success" for m in update["messages"])
    assert update["tool_rounds"] == 1
    await deps.providers.aclose()


async def test_a_result_carrying_the_callers_own_data_marks_the_turn() -> None:
    async def mine() -> tuple[str, dict[str, object]]:
        return "k1's passage", scoped_artifact(True)

    async def public() -> str:
        return "anyone's"

    deps = make_deps(["offline"], {})
    deps.tools = ToolRegistry()
    deps.tools.register(
        StructuredTool.from_function(
            coroutine=mine, name="mine", description="m", response_format="content_and_artifact"
        )
    )
    deps.tools.register(make_tool("public", public))
    from nodes.tool_node import make_tool_node

    node = make_tool_node(lambda: deps)

    async def turn(*names: str) -> dict[str, Any]:
        message = AIMessage(content="", tool_calls=[call(name) for name in names])
        state: State = {
            "messages": [message],
            "tools_offered": ["mine", "public"],
            "tool_rounds": 0,
        }
        return await node(state, runtime=NO_CONTEXT)

    assert (await turn("public"))["caller_scoped"] is False
    scoped = await turn("public", "mine")
    assert scoped["caller_scoped"] is True
    assert [m.content for m in scoped["messages"]] == ["anyone's", "k1's passage"]
    await deps.providers.aclose()
