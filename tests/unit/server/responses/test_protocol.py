"""The Responses request wire: input forms, item types, tools, strict types."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from server.responses.protocol import (
    CreateResponseRequest,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    HostedTool,
    MessageItem,
    ReasoningItem,
)


def parse(**body: Any) -> CreateResponseRequest:
    return CreateResponseRequest.model_validate({"model": "m", **body})


def test_a_string_input_is_one_user_message() -> None:
    request = parse(input="hi")
    assert request.items == [MessageItem(role="user", content="hi")]
    assert request.stored  # store defaults to true
    assert not parse(input="hi", store=False).stored


def test_items_are_told_apart_by_type_and_a_message_may_leave_it_out() -> None:
    request = parse(
        input=[
            {"role": "user", "content": "hi"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "yo"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]
    )
    kinds = [type(item) for item in request.items]
    assert kinds == [
        MessageItem,
        MessageItem,
        FunctionCallItem,
        FunctionCallOutputItem,
        ReasoningItem,
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"input": [{"type": "item_reference", "id": ""}]},
        {"input": [{"type": "computer_call_output", "id": "cu_1"}]},
        {"input": "hi", "reasoning": {"effort": "maximal"}},
        {"input": "hi", "text": {"verbosity": "loud"}},
        {"input": []},
        {"input": 3},
        {"input": "hi", "stream": "yes"},
        {"input": "hi", "temperature": "0.5"},
        {"input": "hi", "temperature": float("nan")},
        {"input": "hi", "metadata": {f"k{n}": "v" for n in range(17)}},
        {"input": "hi", "metadata": {"k": "v" * 513}},
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]},
        {"input": [{"role": "tool", "content": "x"}]},
        {"input": "hi", "tools": [{"type": "function", "name": "bad name"}]},
    ],
)
def test_what_openai_refuses_is_a_validation_error(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(**body)


def test_references_reasoning_and_verbosity_are_read() -> None:
    request = parse(
        input=[
            {"type": "item_reference", "id": "msg_1"},
            {"id": "fc_1"},
            {"id": "rs_1", "type": None},
        ],
        reasoning={"effort": "low", "summary": "auto"},
        text={"verbosity": "high"},
    )
    assert [(type(item).__name__, item.id) for item in request.items] == [
        ("ItemReference", "msg_1"),
        ("ItemReference", "fc_1"),
        ("ItemReference", "rs_1"),
    ]
    assert request.openai_params == {"reasoning_effort": "low", "verbosity": "high"}
    assert parse(input="hi", reasoning={"summary": "auto"}).openai_params == {}


def test_tools_are_function_tools_or_hosted_ones_to_refuse() -> None:
    request = parse(
        input="hi",
        tools=[{"type": "function", "name": "f", "parameters": {}}, {"type": "web_search"}],
    )
    assert [type(tool) for tool in request.tools or []] == [FunctionTool, HostedTool]


def test_unknown_fields_are_kept_for_the_service_to_refuse() -> None:
    assert parse(input="hi", n=2).model_extra == {"n": 2}
