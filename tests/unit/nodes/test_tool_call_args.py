"""A client's tool call arguments as LangChain args: never an exception, always storable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from nodes.messages import MAX_ARGUMENT_DEPTH, storable_args, tool_call_args
from server.turns.reconcile import stamp_client_message


@pytest.mark.parametrize(
    ("arguments", "args"),
    [
        ('{"city": "Oslo"}', {"city": "Oslo"}),
        ("", {}),
        ('"Oslo"', {"__value__": "Oslo"}),
        ("[1, 2]", {"__value__": [1, 2]}),
        ('{"n": 18446744073709551615, "m": -9223372036854775808}', {"n": 2**64 - 1, "m": -(2**63)}),
        ('{"\\ud800": "a\\u0000b"}', {"\ufffd": "ab"}),  # repaired as every body is
        (
            "[" * MAX_ARGUMENT_DEPTH + "]" * MAX_ARGUMENT_DEPTH,
            {"__value__": json.loads("[" * MAX_ARGUMENT_DEPTH + "]" * MAX_ARGUMENT_DEPTH)},
        ),
    ],
)
def test_json_is_taken(arguments: str, args: dict[str, Any]) -> None:
    assert tool_call_args(arguments) == args


@pytest.mark.parametrize(
    "arguments",
    [
        "9" * 5000,
        "{not json",
        "[" * 3000 + "]" * 3000,
        "[" * (MAX_ARGUMENT_DEPTH + 1) + "]" * (MAX_ARGUMENT_DEPTH + 1),
        '{"n": 18446744073709551616}',
        '{"n": -9223372036854775809}',
        '{"x": NaN}',
        "-Infinity",
        '{"x": 1e400}',
    ],
)
def test_what_cannot_be_stored_or_read_is_kept_as_its_text(arguments: str) -> None:
    assert tool_call_args(arguments) == {"__raw__": arguments}


def json_text() -> st.SearchStrategy[str]:
    """JSON documents, valid or nearly so, with big numbers, deep nesting and odd strings."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(),
    )
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=20,
    )
    documents = values.map(json.dumps)
    nested = st.integers(0, 400).map(lambda depth: "[" * depth + "1" + "]" * depth)
    raw = st.text(alphabet='[]{}":,0123456789eE.-+ntrufalsNIy\\ud80', max_size=80)
    return st.one_of(documents, nested, raw)


@settings(max_examples=300, deadline=None)
@given(json_text())
def test_any_arguments_become_args_the_checkpointer_can_store(arguments: str) -> None:
    args = tool_call_args(arguments)

    message = AIMessage(content="", tool_calls=[{"name": "f", "args": args, "id": "call_1"}])
    serializer = JsonPlusSerializer()
    assert serializer.loads_typed(serializer.dumps_typed(message)).tool_calls[0]["args"] == args
    json.dumps(args, allow_nan=False)  # and a provider's request can carry them


def test_parsed_args_are_kept_when_storable_else_as_their_json_text() -> None:
    given = {"city": "Oslo", "days": [1, {"n": 2**64 - 1}]}
    assert storable_args(given) == given
    assert storable_args({"n": 2**64}) == {"__raw__": '{"n": 18446744073709551616}'}
    assert storable_args({"x": float("inf")}) == {"__raw__": '{"x": Infinity}'}
    assert storable_args({"\ud800": ["a\x00b"]}) == {"\ufffd": ["ab"]}
    nested: Any = 1
    for _ in range(MAX_ARGUMENT_DEPTH + 1):
        nested = [nested]
    assert set(storable_args({"deep": nested})) == {"__raw__"}


def test_the_args_given_are_left_as_they_are() -> None:
    given = {"a": ["x\x00"], "b": {"c": "\ud800"}}
    storable_args(given)
    assert given == {"a": ["x\x00"], "b": {"c": "\ud800"}}


def test_every_door_stores_a_client_s_tool_calls_with_storable_args() -> None:
    call = {"name": "f", "args": {"n": 2**64}, "id": "call_1"}
    stamped = stamp_client_message(AIMessage("", tool_calls=[call]))
    assert stamped.tool_calls[0]["args"] == {"__raw__": '{"n": 18446744073709551616}'}
    assert stamped.tool_calls[0]["id"] == "call_1"
