"""Offline model rules for extensions and memory: `use <tool> k=v`, "what did I say?"."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from nodes.providers.offline import offline_reply, plan_tool_call


def test_use_calls_any_offered_tool_by_name_with_typed_arguments() -> None:
    assert plan_tool_call("use roll_dice count=2 sides=20 seed=7", ["roll_dice"]) == (
        "roll_dice",
        {"count": 2, "sides": 20, "seed": 7},
    )
    assert plan_tool_call('Use the echo tool text="two words" ratio=0.5', ["echo"]) == (
        "echo",
        {"text": "two words", "ratio": 0.5},
    )
    assert plan_tool_call("call roll_dice", ["roll_dice"]) == ("roll_dice", {})


def test_use_names_only_offered_tools() -> None:
    assert plan_tool_call("use roll_dice sides=6", ["echo"]) is None
    # Not a tool name: the ordinary rules still apply ("use" is a common word).
    assert plan_tool_call("use 2 + 2", ["calculator"]) == ("calculator", {"expression": "2 + 2"})


def test_recall_quotes_the_earlier_user_messages() -> None:
    thread = [
        HumanMessage("echo pineapple"),
        AIMessage("pineapple"),
        HumanMessage("What did I say before?"),
    ]
    reply = offline_reply(thread, ["echo"])
    assert reply.content == 'Earlier you said: "echo pineapple"'
    assert reply.tool_calls == []


def test_recall_without_history_says_so() -> None:
    reply = offline_reply([HumanMessage("what did I say?")], [])
    assert "first message of our conversation" in str(reply.content)
