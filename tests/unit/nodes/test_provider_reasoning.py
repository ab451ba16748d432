"""Reasoning in its stored form: read from each provider's shape, and put back for each one.

The HTTP round trips (DeepSeek/vLLM fields, Anthropic thinking) are in
tests/integration/test_reasoning_http.py; these cover the shapes the fake upstream does not
speak: OpenRouter's streamed `reasoning_details` and what goes back to OpenRouter.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import SecretStr

from nodes.providers.openai_wire import PlainBodyChatOpenAI
from nodes.providers.reasoning import (
    Echo,
    reasoning_text,
    settle_reasoning,
    with_thinking_blocks,
)

DETAIL = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0}


def chat(echo: Echo = "none") -> PlainBodyChatOpenAI:
    return PlainBodyChatOpenAI(
        model="m", api_key=SecretStr("k"), base_url="http://127.0.0.1:9/v1", reasoning_echo=echo
    )


def openrouter_chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def test_openrouters_streamed_reasoning_is_joined_into_whole_entries() -> None:
    model = chat("openrouter")
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": ""},
        {"reasoning": "Two plus", "reasoning_details": [{**DETAIL, "text": "Two plus"}]},
        {"reasoning": " two.", "reasoning_details": [{**DETAIL, "text": " two."}]},
        {"reasoning_details": [{**DETAIL, "text": "", "signature": "sig-1"}]},
        {"content": "Four."},
    ]
    merged: AIMessageChunk | None = None
    for delta in deltas:
        generation = model._convert_chunk_to_generation_chunk(
            openrouter_chunk(delta), AIMessageChunk, None
        )
        assert generation is not None
        assert isinstance(generation.message, AIMessageChunk)
        merged = generation.message if merged is None else merged + generation.message
    assert merged is not None

    settled = settle_reasoning(AIMessage(**merged.model_dump(exclude={"type"})))

    assert settled.content == "Four."
    assert settled.additional_kwargs["reasoning_content"] == "Two plus two."
    # Chunk merging alone would have made `format` "anthropic-claude-v1anthropic-claude-v1…".
    assert settled.additional_kwargs["reasoning_details"] == [
        {**DETAIL, "text": "Two plus two.", "signature": "sig-1"}
    ]


def history() -> list[Any]:
    details = [{**DETAIL, "text": "Use the calculator.", "signature": "sig-1"}]
    reasoning = {"reasoning_content": "Use the calculator.", "reasoning_details": details}
    return [
        HumanMessage("What is 17 * 23?"),
        AIMessage(
            "",
            tool_calls=[{"name": "calculator", "args": {"expression": "17*23"}, "id": "c1"}],
            additional_kwargs=reasoning,
        ),
        ToolMessage("391", tool_call_id="c1"),
        AIMessage("391.", additional_kwargs={"reasoning_content": "Done."}),
        HumanMessage("Thanks"),
    ]


def sent_messages(model: PlainBodyChatOpenAI) -> list[dict[str, Any]]:
    payload = model._get_request_payload(history())
    messages: list[dict[str, Any]] = payload["extra_body"]["messages"]
    return messages


def test_reasoning_goes_back_on_tool_call_turns_in_each_kinds_field() -> None:
    to_openrouter = sent_messages(chat("openrouter"))
    to_deepseek = sent_messages(chat("reasoning_content"))
    to_openai = sent_messages(chat("none"))

    assert to_openrouter[1]["reasoning"] == "Use the calculator."
    assert (
        to_openrouter[1]["reasoning_details"] == history()[1].additional_kwargs["reasoning_details"]
    )
    assert "reasoning_content" not in to_openrouter[1]
    assert to_deepseek[1]["reasoning_content"] == "Use the calculator."
    assert "reasoning_details" not in to_deepseek[1]
    for sent in (to_openrouter, to_deepseek, to_openai):
        # A finished answer's reasoning would only cost prompt tokens.
        assert set(sent[3]) == {"role", "content"}
    assert set(to_openai[1]) == {"role", "content", "tool_calls"}


def anthropic_stream() -> AIMessageChunk:
    """Chunks as ChatAnthropic streams a thinking block, a redacted one, then text."""
    chunks = [
        AIMessageChunk(content=[{"type": "thinking", "thinking": "Let me ", "index": 0}]),
        AIMessageChunk(content=[{"type": "thinking", "thinking": "think.", "index": 0}]),
        AIMessageChunk(
            content=[{"type": "thinking", "thinking": "", "signature": "sig-9", "index": 0}]
        ),
        AIMessageChunk(content=[{"type": "redacted_thinking", "data": "opaque", "index": 1}]),
        AIMessageChunk(content=[{"type": "text", "text": "Hi", "index": 2}]),
    ]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


def test_anthropic_thinking_leaves_the_content_for_its_own_field_with_its_signature() -> None:
    merged = anthropic_stream()
    assert reasoning_text(merged) == "Let me think."  # as the stream's deltas show it

    settled = settle_reasoning(AIMessage(**merged.model_dump(exclude={"type"})))

    assert settled.additional_kwargs["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-9"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    assert settled.additional_kwargs["reasoning_content"] == "Let me think."


def test_thinking_blocks_go_back_before_the_text_of_tool_use_turns_only() -> None:
    blocks = [{"type": "thinking", "thinking": "Hm.", "signature": "sig-9"}]
    call = {"name": "calculator", "args": {"expression": "1+1"}, "id": "t1"}
    tool_turn = AIMessage(
        "Checking.", tool_calls=[call], additional_kwargs={"thinking_blocks": blocks}
    )
    answer = AIMessage("Two.", additional_kwargs={"thinking_blocks": blocks})

    assert with_thinking_blocks(tool_turn).content == [
        *blocks,
        {"type": "text", "text": "Checking."},
    ]
    assert with_thinking_blocks(answer) is answer
    assert tool_turn.content == "Checking."  # the stored message is not changed
