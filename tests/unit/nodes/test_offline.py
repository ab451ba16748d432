"""The offline model: deterministic tool calls and answers, no network."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from nodes.providers.offline import (
    NOT_CONFIGURED,
    OfflineChatModel,
    find_expression,
    offline_reply,
    plan_tool_call,
)
from nodes.tools import build_tool_registry
from nodes.tools.registry import ToolConfig
from tests.helpers import WEATHER_TOOL

TOOLS = ["calculator", "clock", "echo", "searxng_search"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is 17 * 23?", ("calculator", {"expression": "17 * 23"})),
        ("what's 2^10", ("calculator", {"expression": "2^10"})),
        ("Calculate sqrt(16) + 1 please", ("calculator", {"expression": "sqrt(16) + 1"})),
        ("echo hello world", ("echo", {"text": "hello world"})),
        ("What time is it in Europe/Paris?", ("clock", {"timezone": "Europe/Paris"})),
        ("What is the date today?", ("clock", {"timezone": "UTC"})),
        ("What day is it in 10 days?", ("clock", {"timezone": "UTC", "add_days": 10})),
        (
            "How many days until 2027-01-01?",
            ("clock", {"timezone": "UTC", "until": "2027-01-01"}),
        ),
        (
            "search for langgraph checkpoints",
            ("searxng_search", {"query": "langgraph checkpoints"}),
        ),
        ("Tell me a joke", None),
        ("I have 3 cats", None),
    ],
)
def test_plan_tool_call(text: str, expected: object) -> None:
    assert plan_tool_call(text, TOOLS) == expected


def test_only_offered_tools_are_called() -> None:
    assert plan_tool_call("What is 17 * 23?", ["echo"]) is None


def test_find_expression_picks_the_longest_run() -> None:
    assert find_expression("is 1 + 1 less than (2 * 3) - 1?") == "(2 * 3) - 1"


def test_arithmetic_turn_makes_a_real_tool_call_then_answers_from_the_result() -> None:
    question = HumanMessage(content="What is 17 * 23?")
    call = offline_reply([question], TOOLS)
    assert call.content == ""
    assert call.tool_calls[0]["name"] == "calculator"
    assert call.response_metadata["finish_reason"] == "tool_calls"
    assert call.tool_calls[0]["id"] == offline_reply([question], TOOLS).tool_calls[0]["id"]

    result = ToolMessage(
        content="391", tool_call_id=call.tool_calls[0]["id"] or "", name="calculator"
    )
    answer = offline_reply([question, call, result], TOOLS)
    assert answer.content == "17 * 23 = 391"
    assert answer.tool_calls == []
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["total_tokens"] > 0


def test_tool_errors_are_reported() -> None:
    call = offline_reply([HumanMessage(content="What is 1/0?")], TOOLS)
    error = ToolMessage(
        content="Error: division by zero",
        tool_call_id=call.tool_calls[0]["id"] or "",
        name="calculator",
        status="error",
    )
    answer = offline_reply([HumanMessage(content="What is 1/0?"), call, error], TOOLS)
    assert "calculator tool reported an error: Error: division by zero" in str(answer.content)


def test_plain_chat_explains_how_to_configure_a_provider() -> None:
    assert offline_reply([HumanMessage(content="hi")], TOOLS).content == NOT_CONFIGURED


def test_background_tasks_get_json() -> None:
    title = offline_reply(
        [
            HumanMessage(
                content="### Task:\nGenerate a title.\n<chat_history>\nUSER: Plan a trip to Rome\n"
            )
        ],
        [],
    )
    assert json.loads(str(title.content)) == {"title": "Plan a trip to rome"}
    tags = offline_reply([HumanMessage(content="### Task:\nGenerate 1-3 broad tags")], [])
    assert "tags" in json.loads(str(tags.content))


async def test_the_chat_model_streams_what_it_generates() -> None:
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    model = OfflineChatModel().bind_tools(registry.tools())
    question = [HumanMessage(content="What is 6 * 7?")]

    whole = await model.ainvoke(question)
    merged: AIMessageChunk | None = None
    async for chunk in model.astream(question):
        assert isinstance(chunk, AIMessageChunk)
        merged = chunk if merged is None else merged + chunk

    assert isinstance(whole, AIMessage)
    assert merged is not None
    assert merged.tool_calls == whole.tool_calls
    assert merged.usage_metadata == whole.usage_metadata

    plain = OfflineChatModel()
    chunks = [c async for c in plain.astream([HumanMessage(content="hello")])]
    assert len(chunks) > 3
    assert "".join(str(c.content) for c in chunks) == NOT_CONFIGURED


# --- what a client asks of the model: max_tokens, stop, tool_choice ---------------------

BOOKING_TOOL = {
    "type": "function",
    "function": {
        "name": "book_table",
        "description": "Book a restaurant table",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "Where"},
                "party_size": {"type": "integer", "minimum": 1, "maximum": 20},
                "meal": {"type": "string", "enum": ["lunch", "dinner"]},
                "outdoor": {"type": "boolean"},
                "notes": {"type": "string"},
            },
            "required": ["city", "party_size", "meal", "outdoor"],
        },
    },
}
FORCE_BOOKING = {"type": "function", "function": {"name": "book_table"}}


async def merged_stream(model: Any, messages: list[Any], **kwargs: Any) -> AIMessageChunk:
    merged: AIMessageChunk | None = None
    async for chunk in model.astream(messages, **kwargs):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    return merged


@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
async def test_max_tokens_cuts_the_answer_and_says_length(streamed: bool) -> None:
    model = OfflineChatModel()
    question = [HumanMessage(content="Tell me a story")]

    reply = (
        await merged_stream(model, question, max_tokens=5)
        if streamed
        else await model.ainvoke(question, max_tokens=5)
    )

    assert reply.content == " ".join(NOT_CONFIGURED.split()[:5])
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 5
    roomy = await model.ainvoke(question, max_tokens=500)
    assert roomy.content == NOT_CONFIGURED
    assert roomy.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
async def test_stop_cuts_the_text_before_the_stop_sequence(streamed: bool) -> None:
    model = OfflineChatModel()
    question = [HumanMessage(content="Tell me a story")]

    reply = (
        await merged_stream(model, question, stop=["provider", "model"])
        if streamed
        else await model.ainvoke(question, stop=["provider", "model"])
    )

    assert reply.content == "I am the built-in offline "
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 5


def test_stop_applies_to_answers_from_tool_results() -> None:
    question = HumanMessage(content="What is 17 * 23?")
    call = offline_reply([question], TOOLS)
    result = ToolMessage(
        content="391", tool_call_id=call.tool_calls[0]["id"] or "", name="calculator"
    )
    answer = offline_reply([question, call, result], TOOLS, stop=["="])
    assert answer.content == "17 * 23 "


async def test_a_forced_client_tool_is_called_with_arguments_from_the_text() -> None:
    model = OfflineChatModel().bind_tools([WEATHER_TOOL, BOOKING_TOOL], tool_choice=FORCE_BOOKING)

    reply = await model.ainvoke(
        [HumanMessage(content="Book a table in Paris for 4 people, dinner please")]
    )

    assert isinstance(reply, AIMessage)
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    [call] = reply.tool_calls
    assert call["name"] == "book_table"
    assert call["args"] == {"city": "Paris", "party_size": 4, "meal": "dinner", "outdoor": False}


async def test_a_forced_tool_wins_over_the_rules_and_gets_typed_defaults() -> None:
    model = OfflineChatModel().bind_tools([BOOKING_TOOL], tool_choice=FORCE_BOOKING)

    reply = await merged_stream(model, [HumanMessage(content="What is 2 + 2?")])

    [call] = reply.tool_calls
    assert call["name"] == "book_table"
    args = call["args"]
    assert set(args) == {"city", "party_size", "meal", "outdoor"}
    assert isinstance(args["city"], str)
    assert args["party_size"] == 2
    assert args["meal"] == "lunch"
    assert args["outdoor"] is False


async def test_a_forced_server_tool_gets_the_arguments_its_own_rule_finds() -> None:
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    force = {"type": "function", "function": {"name": "calculator"}}
    model = OfflineChatModel().bind_tools(registry.tools(), tool_choice=force)

    reply = await model.ainvoke([HumanMessage(content="echo 6 * 7")])

    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["args"] == {"expression": "6 * 7"}


async def test_required_calls_the_tool_that_best_matches_the_text() -> None:
    model = OfflineChatModel().bind_tools([BOOKING_TOOL, WEATHER_TOOL], tool_choice="required")

    reply = await model.ainvoke([HumanMessage(content="How is the weather in New York?")])

    assert isinstance(reply, AIMessage)
    [call] = reply.tool_calls
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "New York"}
    auto = OfflineChatModel().bind_tools([BOOKING_TOOL, WEATHER_TOOL], tool_choice="auto")
    unforced = await auto.ainvoke([HumanMessage(content="How is the weather in New York?")])
    assert unforced.content == NOT_CONFIGURED
    assert unforced.tool_calls == []


async def test_after_the_tool_results_a_forced_model_answers() -> None:
    model = OfflineChatModel().bind_tools([WEATHER_TOOL], tool_choice="required")
    question = HumanMessage(content="Weather in Oslo?")
    call = await model.ainvoke([question])
    assert isinstance(call, AIMessage)
    result = ToolMessage(content="Sunny, 21 C", tool_call_id=call.tool_calls[0]["id"] or "")

    answer = await model.ainvoke([question, call, result])

    assert answer.content == "Sunny, 21 C"
    assert answer.tool_calls == []


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("What is 17 \u00d7 23?", "17 \u00d7 23"),
        ("what's 10 \u00f7 4", "10 \u00f7 4"),
        ("7 \u2212 2 = ?", "7 \u2212 2"),
        ("\u22123 + 5", "\u22123 + 5"),
        ("compute 6 \u00b7 7", "6 \u00b7 7"),
        ("2^10", "2^10"),
    ],
)
def test_chat_ui_operators_are_arithmetic(text: str, expression: str) -> None:
    assert plan_tool_call(text, TOOLS) == ("calculator", {"expression": expression})
