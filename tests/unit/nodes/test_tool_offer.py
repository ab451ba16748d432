"""The tools of one model call and the `tool_choice` it is sent with (`nodes/tool_offer.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from graph.context import Context
from graph.state import State
from nodes.providers.registry import provider_spec
from nodes.tool_offer import ANY_TOOL, Offer, for_kind, forced_tool, offer_for, tool_options
from tests.factories import make_deps, make_graph
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.helpers import WEATHER_TOOL

NAMED = {"type": "function", "function": {"name": "get_weather"}}
QUESTION = HumanMessage("weather in Oslo, and 2+2?")


def state(*messages: Any, rounds: int = 0) -> State:
    return State(
        messages=list(messages) or [QUESTION],
        tools_offered=["calculator", "clock"],
        client_tools_offered=["get_weather"],
        tool_rounds=rounds,
        tool_budget=3,
    )


@pytest.mark.parametrize(
    ("choice", "forced"),
    [
        (None, None),
        ("auto", None),
        ("none", None),
        ("required", ANY_TOOL),
        ("any", ANY_TOOL),
        (NAMED, "get_weather"),
        ({"type": "function", "name": "get_weather"}, "get_weather"),  # the Responses form
        ("get_weather", "get_weather"),  # LangChain's bare name
        ({"type": "function", "function": {}}, None),
    ],
)
def test_forced_tool_reads_every_spelling(choice: object, forced: str | None) -> None:
    assert forced_tool(choice) == forced


def test_auto_offers_every_tool_of_the_turn() -> None:
    offer = offer_for(state(), Context(client_tools=[WEATHER_TOOL]))
    assert (offer.server, offer.client, offer.forced) == (
        ["calculator", "clock"],
        [WEATHER_TOOL],
        None,
    )


@pytest.mark.parametrize("choice", ["required", NAMED])
def test_a_forced_client_tool_is_offered_without_the_servers_tools(
    choice: str | dict[str, Any],
) -> None:
    offer = offer_for(state(), Context(client_tools=[WEATHER_TOOL], tool_choice=choice))
    assert offer.server == []
    assert offer.client == [WEATHER_TOOL]
    assert offer.forced == forced_tool(choice)


def test_client_results_keep_the_choice_and_server_results_end_it() -> None:
    context = Context(client_tools=[WEATHER_TOOL], tool_choice="required")
    client_call = AIMessage("", tool_calls=[{"name": "get_weather", "args": {}, "id": "c1"}])
    after_client = state(QUESTION, client_call, ToolMessage("sunny", tool_call_id="c1"))
    assert offer_for(after_client, context).forced == ANY_TOOL

    server_call = AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": "s1"}])
    after_server = state(QUESTION, server_call, ToolMessage("4", tool_call_id="s1"))
    offer = offer_for(after_server, context)
    assert (offer.forced, offer.server) == (None, ["calculator", "clock"])


def test_required_without_client_tools_forces_the_servers() -> None:
    turn = state()
    turn["client_tools_offered"] = []
    offer = offer_for(turn, Context(tool_choice="required"))
    assert (offer.server, offer.client, offer.forced) == (["calculator", "clock"], [], ANY_TOOL)


def test_a_named_server_tool_is_forced_among_the_usual_offer() -> None:
    choice = {"type": "function", "function": {"name": "calculator"}}
    offer = offer_for(state(), Context(client_tools=[WEATHER_TOOL], tool_choice=choice))
    assert (offer.server, offer.client, offer.forced) == (
        ["calculator", "clock"],
        [WEATHER_TOOL],
        "calculator",
    )
    unknown = {"type": "function", "function": {"name": "nowhere"}}
    assert offer_for(state(), Context(tool_choice=unknown)).forced is None


def test_none_and_a_spent_budget_offer_nothing() -> None:
    context = Context(client_tools=[WEATHER_TOOL], tool_choice="none")
    assert not offer_for(state(), context)
    assert not offer_for(state(rounds=3), Context(client_tools=[WEATHER_TOOL]))


@pytest.mark.parametrize(
    ("kind", "forced", "sent"),
    [
        ("openai", ANY_TOOL, "required"),
        ("openai", "get_weather", NAMED),
        ("offline", "get_weather", NAMED),
        ("anthropic", ANY_TOOL, "any"),
        ("anthropic", "get_weather", "get_weather"),  # langchain-anthropic: {"type": "tool", ...}
        ("ollama", ANY_TOOL, None),
        ("openai", None, None),
    ],
)
def test_each_kind_gets_its_own_form(kind: str, forced: str | None, sent: object) -> None:
    offer = Offer(client=[WEATHER_TOOL], forced=forced)
    options = tool_options(offer, provider_spec(kind), Context(parallel_tool_calls=False))
    assert options.get("tool_choice") == sent
    assert ("parallel_tool_calls" in options) is provider_spec(kind).speaks_openai


def test_a_kind_without_tool_choice_is_offered_only_the_forced_tool() -> None:
    other = {"type": "function", "function": {"name": "other"}}
    offer = Offer(server=["calculator"], client=[WEATHER_TOOL, other], forced="get_weather")
    assert for_kind(offer, provider_spec("ollama")) == Offer(
        client=[WEATHER_TOOL], forced="get_weather"
    )
    assert for_kind(offer, provider_spec("openai")) == offer
    anything = Offer(client=[WEATHER_TOOL, other], forced=ANY_TOOL)
    assert for_kind(anything, provider_spec("ollama")) == anything


async def test_a_named_server_tool_in_the_graphs_context_is_called_once(
    primary: FakeUpstream,
) -> None:
    """`langgraph dev` and the LangGraph API take a context: a server tool may be named."""
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "2+2"})]), Reply("4.")
    )
    deps = make_deps(["openai:gpt-test"], {"openai": primary.openai_base_url})
    choice = {"type": "function", "function": {"name": "calculator"}}
    try:
        result = await make_graph(deps).ainvoke(
            {"messages": [HumanMessage("What time is it?")]},  # the clock, unless named
            {"configurable": {"thread_id": "named-server-tool"}},
            context=Context(model="m", tool_choice=choice, max_tools_offered=1),
        )
    finally:
        await deps.providers.aclose()

    assert result["messages"][-1].content == "4."
    forced, after = (request.body or {} for request in primary.requests)
    assert forced["tool_choice"] == choice
    assert [tool["function"]["name"] for tool in forced["tools"]] == ["calculator"]
    assert "tool_choice" not in after
