"""The router: route, tool selection and provider chain of a turn."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool
from langgraph.runtime import Runtime

from graph.context import Context
from graph.errors import ModelNotFoundError
from nodes.router import make_router, select_tools
from nodes.tools import ToolRegistry
from tests.factories import make_deps


def runtime_with(context: Context | None) -> Runtime[Context]:
    """LangGraph's runtime as a node gets it; None: a run without a context."""
    if context is None:
        return Runtime()  # its context is None by default, as in a run given none
    return Runtime(context=context)


def tool(name: str, description: str) -> StructuredTool:
    async def run(text: str) -> str:
        return text

    return StructuredTool.from_function(coroutine=run, name=name, description=description)


def test_all_tools_are_offered_when_few_are_registered() -> None:
    registry = ToolRegistry([tool("a", "alpha"), tool("b", "beta")])
    assert select_tools(registry, "anything", limit=5) == ["a", "b"]


def test_the_most_relevant_tools_are_offered_when_many_are_registered() -> None:
    registry = ToolRegistry(
        [
            tool("calculator", "evaluate arithmetic"),
            tool("weather", "current weather forecast for a city"),
            tool("stocks", "stock market prices"),
            tool("translate", "translate text between languages"),
        ]
    )
    chosen = select_tools(registry, "What is the weather forecast in Paris?", limit=2)
    assert chosen[0] == "weather"
    assert len(chosen) == 2


async def test_a_chat_turn_goes_to_the_model_with_tools_and_resets_the_turn() -> None:
    deps = make_deps(["offline"], {})
    router = make_router(lambda: deps)
    # Room for every registered tool, however many the catalogue has: all are offered, in order.
    context = Context(model="m", max_tool_rounds=4, max_tools_offered=len(deps.tools))
    update = await router(
        {"messages": [HumanMessage(content="What is 2+2?")], "tool_rounds": 3},
        runtime=runtime_with(context),
    )
    assert update["route"] == "model"
    assert update["route_reason"] == "chat"
    assert update["provider_chain"] == ["offline"]
    assert update["tools_offered"] == deps.tools.names()
    assert "calculator" in update["tools_offered"]
    assert update["tool_rounds"] == 0
    assert update["tool_budget"] == 4
    assert update["attempts"] == []
    assert update["usage"]["total_tokens"] == 0


async def test_background_tasks_get_no_tools() -> None:
    deps = make_deps(["offline"], {})
    router = make_router(lambda: deps)
    update = await router(
        {"messages": [HumanMessage(content="### Task:\nGenerate a concise title")]},
        runtime=runtime_with(None),
    )
    assert update["route"] == "model"
    assert update["route_reason"] == "background_task"
    assert update["tools_offered"] == []


async def test_no_user_message_goes_straight_to_respond() -> None:
    deps = make_deps(["offline"], {})
    router = make_router(lambda: deps)
    update = await router(
        {"messages": [AIMessage(content="hello")]},
        runtime=runtime_with(None),
    )
    assert update["route"] == "respond"


async def test_an_unknown_model_is_refused() -> None:
    deps = make_deps(["offline"], {})
    router = make_router(lambda: deps)
    with pytest.raises(ModelNotFoundError, match="'gpt-5'"):
        await router(
            {"messages": [HumanMessage(content="hi")]},
            runtime=runtime_with(Context(model="gpt-5")),
        )


def client_tool(name: str, description: str) -> dict[str, object]:
    return {"type": "function", "function": {"name": name, "description": description}}


async def test_client_tools_are_narrowed_shadow_server_tools_and_a_forced_one_stays() -> None:
    deps = make_deps(["offline"], {})
    router = make_router(lambda: deps)
    many = [client_tool(f"tool_{i}", f"does thing {i}") for i in range(30)]
    many += [client_tool("echo", "the client's own echo"), client_tool("weather", "city weather")]
    context = Context(model="m", max_tools_offered=4, client_tools=many)
    update = await router(
        {"messages": [HumanMessage(content="weather in the city, and echo it")]},
        runtime=runtime_with(context),
    )
    assert len(update["client_tools_offered"]) == 4
    assert {"weather", "echo"} <= set(update["client_tools_offered"])
    assert "echo" not in update["tools_offered"]  # the client's echo wins over the server's

    forced = Context(
        model="m",
        max_tools_offered=4,
        client_tools=many,
        tool_choice={"type": "function", "function": {"name": "tool_29"}},
    )
    update = await router(
        {"messages": [HumanMessage(content="weather in the city")]},
        runtime=runtime_with(forced),
    )
    assert update["client_tools_offered"][0] == "tool_29"
    assert len(update["client_tools_offered"]) == 4

    none = Context(model="m", client_tools=many, tool_choice="none")
    update = await router(
        {"messages": [HumanMessage(content="weather")]},
        runtime=runtime_with(none),
    )
    assert update["tools_offered"] == []
    assert update["client_tools_offered"] == []
