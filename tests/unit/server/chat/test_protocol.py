"""The /v1 request models and their translation: strict types, null as unset, typed parts."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import ValidationError

from server.chat.adapter import chunk, completion, to_langchain
from server.chat.protocol import ChatCompletionRequest
from server.errors import error_param
from tests.helpers import NULLABLE

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
FILE = {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "a.pdf"}}
TEXT = {"type": "text", "text": "hello"}
REFUSAL = {"type": "refusal", "refusal": "I cannot."}


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": list(messages) or [{"role": "user", "content": "hi"}],
        **fields,
    }


def invalid(data: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(param, error type) of each error, params as the error handler writes them."""
    with pytest.raises(ValidationError) as caught:
        ChatCompletionRequest.model_validate(data)
    return [(error_param(e, data), e["type"]) for e in caught.value.errors()]


# --- strict scalars -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", "yes"),
        ("stream", "true"),
        ("stream", 1),
        ("parallel_tool_calls", "false"),
        ("temperature", "0.5"),
        ("temperature", True),
        ("top_p", "1"),
        ("max_tokens", "5"),
        ("n", "1"),
        ("seed", "7"),
        ("frequency_penalty", "0"),
        ("logit_bias", {"50256": "-100"}),
    ],
)
def test_a_string_is_not_a_bool_or_a_number_and_a_number_is_not_a_string(
    field: str, value: Any
) -> None:
    errors = invalid(body(**{field: value}))
    assert {param for param, _ in errors} <= {field, f"{field}.50256"}


def test_reasoning_effort_and_verbosity_are_passed_on_and_checked() -> None:
    request = ChatCompletionRequest.model_validate(
        body(reasoning_effort="low", verbosity="high", seed=3)
    )
    assert request.openai_params == {"seed": 3, "reasoning_effort": "low", "verbosity": "high"}
    assert invalid(body(reasoning_effort="maximal")) == [("reasoning_effort", "literal_error")]
    assert invalid(body(verbosity="loud")) == [("verbosity", "literal_error")]


def test_a_tool_s_strict_flag_and_include_usage_are_strict_bools_too() -> None:
    tool = {"type": "function", "function": {"name": "f", "strict": "yes"}}
    assert invalid(body(tools=[tool])) == [("tools[0].function.strict", "bool_type")]
    assert invalid(body(stream_options={"include_usage": "yes"})) == [
        ("stream_options.include_usage", "bool_type")
    ]


def test_an_int_is_a_valid_float_but_a_numeric_string_is_not() -> None:
    request = ChatCompletionRequest.model_validate(
        body(temperature=1, top_p=1, frequency_penalty=-2, logit_bias={"1": 5})
    )
    assert request.temperature == 1.0
    assert isinstance(request.temperature, float)
    assert request.logit_bias == {"1": 5.0}
    assert invalid(body(temperature="1")) == [("temperature", "float_type")]


def test_null_means_not_set_for_every_nullable_parameter_and_extras_are_ignored() -> None:
    given = ChatCompletionRequest.model_validate(
        body(**dict.fromkeys(NULLABLE), store=True, modalities=["text"])
    )
    unset = ChatCompletionRequest.model_validate(body())
    assert given == unset
    assert not given.stream
    assert given.include_usage is False
    assert given.stop_list == []


# --- content parts ------------------------------------------------------------------------


ALL_PARTS: list[dict[str, Any]] = [TEXT, IMAGE, AUDIO, FILE, REFUSAL]


@pytest.mark.parametrize(
    ("role", "parts"),
    [
        ("system", [TEXT]),
        ("developer", [TEXT]),
        ("user", [TEXT, IMAGE, AUDIO, FILE]),
        ("assistant", [TEXT, REFUSAL]),
        ("tool", [TEXT]),
    ],
)
def test_each_role_takes_its_part_types_and_no_other(
    role: str, parts: list[dict[str, Any]]
) -> None:
    def message(content: list[dict[str, Any]]) -> dict[str, Any]:
        return {"role": role, "content": content, "tool_call_id": "call_1"}

    request = ChatCompletionRequest.model_validate(body(message(parts)))
    assert request.messages[0].model_dump(exclude_none=True)["content"] == parts
    for other in (part for part in ALL_PARTS if part not in parts):
        assert invalid(body(message([*parts, other])))[0][0] == (
            f"messages[0].content[{len(parts)}].type"
        )


@pytest.mark.parametrize(
    ("role", "part"),
    [
        ("system", IMAGE),
        ("developer", REFUSAL),
        ("tool", FILE),
        ("user", REFUSAL),
        ("assistant", IMAGE),
        ("assistant", AUDIO),
        ("user", {"type": "bogus"}),
        ("user", {"type": "input_text", "text": "Responses API's name"}),
    ],
)
def test_a_part_the_role_does_not_take_is_refused_naming_it(
    role: str, part: dict[str, Any]
) -> None:
    message: dict[str, Any] = {"role": role, "content": [TEXT, part]}
    if role == "tool":
        message["tool_call_id"] = "call_1"
    errors = invalid(body(message))
    assert errors[0][0] == "messages[0].content[1].type"


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "image_url", "image_url": {}}, "messages[0].content[0].image_url.url"),
        ({"type": "image_url"}, "messages[0].content[0].image_url"),
        (
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "ultra"}},
            "messages[0].content[0].image_url.detail",
        ),
        *(
            (
                {"type": "image_url", "image_url": {"url": url}},
                "messages[0].content[0].image_url.url",
            )
            for url in (
                "ftp://x.test/a.png",
                "data:image/png;base64,not*base64",
                "data:text/plain;base64,AAAA",
                "agent-image:sha256:00",  # the service's own references are not for clients
            )
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "", "format": "flac"}},
            "messages[0].content[0].input_audio.format",
        ),
        ({"type": "file", "file": "a.pdf"}, "messages[0].content[0].file"),
        ({"type": "text", "text": ["a"]}, "messages[0].content[0].text"),
        ({"type": "text"}, "messages[0].content[0].text"),
        ({"text": "no type"}, "messages[0].content[0].type"),
    ],
)
def test_a_malformed_part_is_refused_naming_the_field(part: dict[str, Any], param: str) -> None:
    assert invalid(body({"role": "user", "content": [part]}))[0][0] == param


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "user", "content": 5}, "messages[0].content"),
        ({"role": "user", "content": {"type": "text", "text": "x"}}, "messages[0].content"),
        ({"role": "robot", "content": "x"}, "messages[0].role"),
        ({"content": "x"}, "messages[0].role"),
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": 1}}]},
            "messages[0].tool_calls[0].function.name",
        ),
    ],
)
def test_a_malformed_message_is_refused_with_one_clean_param(
    message: dict[str, Any], param: str
) -> None:
    assert [found for found, _ in invalid(body(message))] == [param]


# --- into the graph -----------------------------------------------------------------------


def parsed(*messages: dict[str, Any]) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(body(*messages))


def test_the_graph_gets_standard_image_blocks_and_the_text_of_text_only_roles() -> None:
    noted = {**IMAGE, "cache_control": {"type": "ephemeral"}}  # not OpenAI's: not passed on
    messages = parsed(
        {"role": "developer", "content": [TEXT, {"type": "text", "text": " there"}]},
        {"role": "user", "content": [TEXT, noted, AUDIO, FILE]},
        {"role": "assistant", "content": [TEXT, REFUSAL]},
        {"role": "tool", "tool_call_id": "c1", "content": [TEXT]},
    ).messages
    system, user, assistant, tool = (to_langchain(m) for m in messages)
    assert isinstance(system, SystemMessage)
    assert system.content == "hello there"
    assert isinstance(user, HumanMessage)
    image = {"type": "image", "base64": "AAAA", "mime_type": "image/png"}
    assert user.content == [TEXT, {**image, "extras": {"detail": "high"}}, AUDIO, FILE]
    assert isinstance(assistant, AIMessage)
    assert assistant.content == "hello"
    assert isinstance(tool, ToolMessage)
    assert (tool.content, tool.tool_call_id) == ("hello", "c1")


# --- responses ----------------------------------------------------------------------------


def test_responses_leave_out_what_they_cannot_fill_and_keep_nullable_nulls() -> None:
    common: dict[str, Any] = {"cid": "chatcmpl-1", "model": "m", "created": 1}
    whole = completion(**common, text="hi", finish_reason="stop", usage=None)
    first = chunk(**common, delta={"role": "assistant", "content": ""}, with_usage_field=True)
    last = chunk(**common, usage={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})

    for payload in (whole, first, last):
        assert "system_fingerprint" not in payload
    assert whole["choices"][0]["logprobs"] is None
    assert whole["choices"][0]["message"]["refusal"] is None
    assert first["usage"] is None
    assert first["choices"][0]["logprobs"] is None
