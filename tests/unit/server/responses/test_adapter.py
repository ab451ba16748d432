"""Responses items to LangChain messages and back: what the graph sees, what the SDK reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage
from openai.types.responses import ResponseItem, ResponseOutputItem
from pydantic import TypeAdapter

from nodes.messages import is_client_message
from server.errors import OpenAIHTTPError
from server.responses.adapter import input_records, output_items, to_messages
from server.responses.protocol import CreateResponseRequest, InputItem
from server.responses.wire import FunctionCall

PNG = "data:image/png;base64,iVBORw0KGgo="


def items(*raw: dict[str, Any]) -> list[InputItem]:
    return CreateResponseRequest.model_validate({"model": "m", "input": list(raw)}).items


def test_items_become_the_messages_of_a_conversation() -> None:
    messages = to_messages(
        items(
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "input_text", "text": "Oslo?"}]},
            {"role": "assistant", "content": "Looking."},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"a": 1}'},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": ""},
            {"type": "reasoning", "summary": []},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "dry"}],
            },
        )
    )
    assert [type(m) for m in messages] == [
        SystemMessage,
        HumanMessage,
        AIMessage,
        ToolMessage,
        ToolMessage,
    ]
    ai = messages[2]
    assert isinstance(ai, AIMessage)
    assert ai.content == "Looking."
    assert [(c["id"], c["args"]) for c in ai.tool_calls] == [("c1", {"a": 1}), ("c2", {})]
    results = [m for m in messages[3:] if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.content) for m in results] == [("c1", "sunny"), ("c2", "dry")]
    assert all(is_client_message(m) for m in messages)


def test_an_image_becomes_a_standard_image_block() -> None:
    (message,) = to_messages(
        items(
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is it?"},
                    {"type": "input_image", "image_url": PNG, "detail": "low"},
                ],
            }
        )
    )
    blocks = message.content
    assert isinstance(blocks, list)
    assert blocks[0] == {"type": "text", "text": "What is it?"}
    image = blocks[1]
    assert isinstance(image, dict)
    assert image["type"] == "image"


@pytest.mark.parametrize(
    ("item", "param"),
    [
        (
            {"role": "system", "content": [{"type": "input_image", "image_url": PNG}]},
            "input[0].content[0].type",
        ),
        (
            {"role": "user", "content": [{"type": "output_text", "text": "x"}]},
            "input[0].content[0].type",
        ),
        ({"role": "user", "content": [{"type": "input_image"}]}, "input[0].content[0].image_url"),
    ],
)
def test_a_part_its_role_cannot_hold_is_a_400_naming_it(item: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIHTTPError) as refused:
        to_messages(items(item))
    assert (refused.value.status, refused.value.param) == (400, param)


def test_input_records_are_what_the_sdk_lists() -> None:
    records = input_records(
        items(
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"role": "user", "content": [{"type": "input_image", "image_url": PNG}]},
        )
    )
    adapter = TypeAdapter(ResponseItem)
    for record in records:
        adapter.validate_python(record, strict=True)
    assert len({r["id"] for r in records}) == len(records)
    assert records[0]["content"] == [{"type": "input_text", "text": "hi"}]


def test_output_items_are_a_message_then_the_calls() -> None:
    call = ToolCall(name="w", args={"city": "Oslo"}, id="c1")
    adapter = TypeAdapter(ResponseOutputItem)
    both = output_items("Looking.", [call])
    assert [item.type for item in both] == ["message", "function_call"]
    for item in both:
        adapter.validate_python(item.model_dump(mode="json"), strict=True)
    only = output_items("", [call], message_id="msg_x")
    assert [item.type for item in only] == ["function_call"]
    assert isinstance(only[0], FunctionCall)
    assert json.loads(only[0].arguments) == {"city": "Oslo"}
    (empty,) = output_items("", [], message_id="msg_x")
    assert empty.id == "msg_x"
