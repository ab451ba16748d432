"""OpenAI wire objects to LangChain messages and back: roles, parts, tool calls, responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage

from graph.state import Usage
from nodes.messages import is_client_message
from server.chat.adapter import (
    chunk,
    completion,
    completion_id,
    to_langchain,
    tool_call_deltas,
)
from tests.unit.server.kit import request

USAGE = Usage(input_tokens=3, output_tokens=4, total_tokens=7)


def converted(*messages: dict[str, Any]) -> list[Any]:
    return [to_langchain(m) for m in request(*messages).messages]


def wire_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- into the graph -----------------------------------------------------------------------


def test_each_role_becomes_its_langchain_message_with_a_fresh_client_id() -> None:
    messages = converted(
        {"role": "system", "content": "sys"},
        {"role": "developer", "content": "dev"},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello", "name": "bot"},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    )
    assert [type(m) for m in messages] == [
        SystemMessage,
        SystemMessage,
        HumanMessage,
        AIMessage,
        ToolMessage,
    ]
    assert [m.content for m in messages] == ["sys", "dev", "hi", "hello", "42"]
    assert (messages[2].name, messages[3].name) == ("ann", "bot")
    assert messages[4].tool_call_id == "c1"
    assert all(is_client_message(m) for m in messages)
    assert len({m.id for m in messages}) == len(messages)


def test_missing_content_is_empty_text() -> None:
    user, assistant = converted({"role": "user"}, {"role": "assistant", "content": None})
    assert (user.content, assistant.content) == ("", "")


def test_images_become_standard_blocks_and_text_roles_keep_only_text() -> None:
    inline = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    linked = {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}}
    user, assistant = converted(
        {"role": "user", "content": [{"type": "text", "text": "look"}, inline, linked]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a "}, {"type": "refusal", "refusal": "no"}],
        },
    )
    assert user.content == [
        {"type": "text", "text": "look"},
        {"type": "image", "base64": "AA", "mime_type": "image/png"},
        {"type": "image", "url": "https://x.test/a.png", "extras": {"detail": "low"}},
    ]
    assert assistant.content == "a "  # a refusal part is not text of the answer


@pytest.mark.parametrize(
    ("arguments", "args"),
    [
        ('{"city": "Oslo", "days": 2}', {"city": "Oslo", "days": 2}),
        ("", {}),
        ("   ", {}),
        ("{not json", {"__raw__": "{not json"}),
        ("[1, 2]", {"__value__": [1, 2]}),
        ("7", {"__value__": 7}),
    ],
)
def test_assistant_tool_calls_come_in_with_parsed_arguments(
    arguments: str, args: dict[str, Any]
) -> None:
    (message,) = converted(
        {"role": "assistant", "content": None, "tool_calls": [wire_call("c1", "f", arguments)]}
    )
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [{"name": "f", "args": args, "id": "c1", "type": "tool_call"}]


# --- out of the graph: what the client reads (JSON, as the routes send it) -----------------


CALLS = [
    ToolCall(name="a", args={"x": 1}, id="c1"),
    ToolCall(name="b", args={}, id=None),
]
COMMON: dict[str, Any] = {"cid": "chatcmpl-x", "model": "m", "created": 5}


def sent_calls(calls: list[ToolCall], text: str = "") -> list[dict[str, Any]]:
    """The `tool_calls` of a completion pausing for these calls."""
    body = completion(**COMMON, text=text, finish_reason="tool_calls", usage=None, tool_calls=calls)
    wired: list[dict[str, Any]] = body["choices"][0]["message"]["tool_calls"]
    return wired


def test_tool_calls_make_the_round_trip_unchanged() -> None:
    sent = [wire_call("c1", "get_weather", '{"city": "Oslo"}'), wire_call("c2", "noop", "{}")]
    (message,) = converted({"role": "assistant", "content": "", "tool_calls": sent})
    back = sent_calls(message.tool_calls)
    assert [c["id"] for c in back] == ["c1", "c2"]
    assert [c["type"] for c in back] == ["function", "function"]
    assert [json.loads(c["function"]["arguments"]) for c in back] == [{"city": "Oslo"}, {}]
    assert [c["function"]["name"] for c in back] == ["get_weather", "noop"]


def test_tool_calls_go_out_as_json_strings_with_their_ids() -> None:
    assert sent_calls(CALLS) == [
        wire_call("c1", "a", '{"x": 1}'),
        wire_call("", "b", "{}"),  # the wire needs a string id
    ]


def test_each_streamed_tool_call_is_one_complete_delta_with_its_index() -> None:
    deltas = [
        chunk(**COMMON, delta=delta)["choices"][0]["delta"] for delta in tool_call_deltas(CALLS)
    ]
    assert [d["tool_calls"][0]["index"] for d in deltas] == [0, 1]
    assert [len(d["tool_calls"]) for d in deltas] == [1, 1]
    assert deltas[0]["tool_calls"][0]["id"] == "c1"
    assert deltas[0]["tool_calls"][0]["function"] == {"name": "a", "arguments": '{"x": 1}'}
    assert tool_call_deltas([]) == []


def test_a_completion_carries_the_text_finish_and_usage() -> None:
    body = completion(**COMMON, text="hi", finish_reason="length", usage=USAGE)
    assert (body["id"], body["object"], body["created"], body["model"]) == (
        "chatcmpl-x",
        "chat.completion",
        5,
        "m",
    )
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "hi", "refusal": None}
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


@pytest.mark.parametrize(("text", "content"), [("", None), ("Let me look.", "Let me look.")])
def test_a_completion_with_tool_calls_has_null_content_only_without_text(
    text: str, content: str | None
) -> None:
    body = completion(
        **COMMON, text=text, finish_reason="tool_calls", usage=None, tool_calls=CALLS[:1]
    )
    message = body["choices"][0]["message"]
    assert message["content"] == content
    assert message["tool_calls"] == [wire_call("c1", "a", '{"x": 1}')]


def test_usage_without_a_run_is_zero() -> None:
    body = completion(**COMMON, text="", finish_reason="stop", usage=None)
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_chunks_carry_a_delta_and_the_usage_chunk_has_no_choices() -> None:
    text = chunk(**COMMON, delta={"content": "he"})
    finish = chunk(**COMMON, finish_reason="stop", with_usage_field=True)
    usage = chunk(**COMMON, usage=USAGE, delta={"content": "ignored"})

    assert text["object"] == "chat.completion.chunk"
    assert text["choices"][0]["delta"] == {"content": "he"}
    assert text["choices"][0]["finish_reason"] is None
    assert "usage" not in text  # only when the client asked for usage
    assert finish["choices"][0]["delta"] == {}
    assert (finish["choices"][0]["finish_reason"], finish["usage"]) == ("stop", None)
    assert usage["choices"] == []
    assert usage["usage"]["total_tokens"] == 7


def test_completion_ids_are_fresh() -> None:
    first, second = completion_id(), completion_id()
    assert first.startswith("chatcmpl-")
    assert first != second
