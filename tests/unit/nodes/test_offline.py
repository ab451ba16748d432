"""The offline model: deterministic tool calls and answers, no network."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from nodes.providers.offline import (
    NOT_CONFIGURED,
    OfflineChatModel,
    find_expression,
    offline_reply,
    plan_tool_call,
)
from nodes.tools import build_tool_registry
from nodes.tools.registry import ToolConfig

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
    merged = None
    async for chunk in model.astream(question):
        merged = chunk if merged is None else merged + chunk

    assert isinstance(whole, AIMessage)
    assert merged is not None
    assert merged.tool_calls == whole.tool_calls
    assert merged.usage_metadata == whole.usage_metadata

    plain = OfflineChatModel()
    chunks = [c async for c in plain.astream([HumanMessage(content="hello")])]
    assert len(chunks) > 3
    assert "".join(str(c.content) for c in chunks) == NOT_CONFIGURED


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
