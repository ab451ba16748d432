"""The pure edge functions."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from graph.routing import after_guard, after_model, after_router
from graph.state import State


def test_after_guard_follows_the_guards_verdict() -> None:
    assert after_guard(State(messages=[], refused=True)) == "refused"
    assert after_guard(State(messages=[], refused=False)) == "accepted"
    assert after_guard(State(messages=[])) == "accepted"


def test_after_router_follows_the_route() -> None:
    assert after_router(State(messages=[], route="model")) == "compact"
    assert after_router(State(messages=[], route="respond")) == "respond"


def test_after_router_refuses_a_missing_route() -> None:
    with pytest.raises(ValueError, match="unknown route"):
        after_router(State(messages=[]))


def call() -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "echo", "args": {"text": "x"}, "id": "1"}])


def test_tool_calls_go_to_tools_while_the_budget_lasts() -> None:
    assert after_model(State(messages=[call()], tool_rounds=0, tool_budget=2)) == "tools"
    assert after_model(State(messages=[call()], tool_rounds=2, tool_budget=2)) == "respond"


def test_a_plain_answer_goes_to_respond() -> None:
    state = State(messages=[AIMessage(content="hi")], tool_rounds=0, tool_budget=5)
    assert after_model(state) == "respond"


def test_malformed_tool_calls_still_get_answered_by_the_tools_node() -> None:
    bad = AIMessage(
        content="",
        invalid_tool_calls=[{"name": "echo", "args": "{oops", "id": "1", "error": "bad json"}],
    )
    assert after_model(State(messages=[bad], tool_rounds=0, tool_budget=1)) == "tools"


def test_after_model_needs_an_ai_message() -> None:
    with pytest.raises(ValueError, match="AIMessage"):
        after_model(State(messages=[HumanMessage(content="hi")]))
