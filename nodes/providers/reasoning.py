"""A provider's reasoning, kept on the stored AI message in one provider-neutral form.

Providers return the model's reasoning three ways: OpenAI-compatible servers (DeepSeek, vLLM,
llama.cpp) as a `reasoning_content` field of the message or stream delta (newer vLLM names
it `reasoning`), OpenRouter as `reasoning` plus structured `reasoning_details`, and Anthropic
as `thinking` / `redacted_thinking` content blocks carrying a signature. The stored message
keeps, in `additional_kwargs`:

* `reasoning_content`: the reasoning as text, whoever produced it (what clients are shown);
* `reasoning_details`: OpenRouter's entries, verbatim (OpenRouter wants them back);
* `thinking_blocks`: Anthropic's blocks with their signatures, verbatim (Anthropic refuses a
  tool-use turn whose thinking is not sent back unchanged).

The content stays plain text, so a client's resent copy (which never carries reasoning)
still matches the stored message. Sending reasoning back is each wire's job
(`openai_wire.PlainBodyChatOpenAI`, `anthropic_wire.PooledChatAnthropic`), from the fields
here. No SDK is imported: the door and the fallback node read these too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage

from nodes.messages import clean_text

REASONING_CONTENT = "reasoning_content"
"""`additional_kwargs` key of the reasoning text (the name DeepSeek and vLLM use)."""
REASONING_DETAILS = "reasoning_details"
"""`additional_kwargs` key of OpenRouter's structured reasoning entries."""
THINKING_BLOCKS = "thinking_blocks"
"""`additional_kwargs` key of Anthropic's thinking blocks, signatures included."""

_THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})
_DETAIL_TEXT_FIELDS = ("text", "summary", "data", "signature")
"""Fields of an OpenRouter reasoning entry that stream in pieces (the rest repeat whole)."""

Echo = Literal["none", "reasoning_content", "openrouter"]
"""How an OpenAI-wire kind sends stored reasoning back on assistant tool-call messages:
`none` (OpenAI's own API takes no such field), `reasoning_content` (DeepSeek, which answers
400 without it in thinking mode; vLLM), `openrouter` (`reasoning` and `reasoning_details`)."""


def wire_reasoning(fields: Mapping[str, Any], *, streamed: bool = False) -> dict[str, Any]:
    """The `additional_kwargs` for the reasoning fields of one OpenAI-shaped message or delta.

    `streamed`: the fields are a stream delta, whose `reasoning_details` are fragments. Their
    `index` becomes a string, so that LangChain's chunk merging keeps them apart (it would
    concatenate every repeated string field of entries with the same integer index, `type`
    and `format` included); `settle_reasoning` joins them back.
    """
    found: dict[str, Any] = {}
    text = fields.get("reasoning_content")
    if not isinstance(text, str):
        text = fields.get("reasoning")
    if isinstance(text, str) and text:
        found[REASONING_CONTENT] = text
    details = fields.get("reasoning_details")
    if isinstance(details, list) and details:
        entries = [dict(entry) for entry in details if isinstance(entry, Mapping)]
        if streamed:
            for entry in entries:
                if isinstance(entry.get("index"), int):
                    entry["index"] = str(entry["index"])
        found[REASONING_DETAILS] = entries
    return found


def reasoning_text(message: BaseMessage) -> str:
    """The reasoning a message (or stream chunk) carries, as text; empty when it has none."""
    text = message.additional_kwargs.get(REASONING_CONTENT)
    if isinstance(text, str) and text:
        return text
    if isinstance(message.content, str):
        return ""
    return "".join(
        str(block.get("thinking") or "")
        for block in message.content
        if isinstance(block, dict) and block.get("type") == "thinking"
    )


def settle_reasoning(message: AIMessage) -> AIMessage:
    """Move a provider's reasoning into the stored form (see the module docstring).

    Thinking blocks leave the content (which is then flattened to text by the caller) for
    `thinking_blocks`, without the stream's `index`; streamed OpenRouter fragments are
    joined into whole entries. The message is changed in place and returned.
    """
    kwargs = message.additional_kwargs
    if isinstance(message.content, list):
        blocks = [
            {key: value for key, value in block.items() if key != "index"}
            for block in message.content
            if isinstance(block, dict) and block.get("type") in _THINKING_TYPES
        ]
        if blocks:
            kwargs[THINKING_BLOCKS] = blocks
            thought = "".join(str(b.get("thinking") or "") for b in blocks)
            if thought and not kwargs.get(REASONING_CONTENT):
                kwargs[REASONING_CONTENT] = thought
    text = kwargs.get(REASONING_CONTENT)
    if isinstance(text, str):
        kwargs[REASONING_CONTENT] = clean_text(text)  # storable, as the content is
    details = kwargs.get(REASONING_DETAILS)
    if isinstance(details, list):
        kwargs[REASONING_DETAILS] = _joined_details(details)
    return message


def _joined_details(entries: list[Any]) -> list[dict[str, Any]]:
    """Streamed OpenRouter fragments (string `index`) joined per entry, in order."""
    joined: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        index = entry.get("index")
        last = joined[-1] if joined else None
        if isinstance(index, str) and last is not None and last.get("index") == index:
            for key, value in entry.items():
                if key in _DETAIL_TEXT_FIELDS and isinstance(value, str):
                    last[key] = str(last.get(key) or "") + value
                elif last.get(key) is None:
                    last[key] = value
            continue
        joined.append(dict(entry))
    for entry in joined:
        index = entry.get("index")
        if isinstance(index, str) and index.isdigit():
            entry["index"] = int(index)
    return joined


def echoed_fields(message: BaseMessage, echo: Echo) -> dict[str, Any]:
    """The reasoning fields to add to an assistant message sent to an OpenAI-wire provider.

    Only assistant messages with tool calls carry it back: DeepSeek requires it there (400
    otherwise) and ignores it elsewhere, and a finished turn's reasoning would only cost
    prompt tokens.
    """
    if echo == "none" or not isinstance(message, AIMessage) or not message.tool_calls:
        return {}
    kwargs = message.additional_kwargs
    text = kwargs.get(REASONING_CONTENT)
    fields: dict[str, Any] = {}
    if echo == "reasoning_content":
        if isinstance(text, str) and text:
            fields[REASONING_CONTENT] = text
        return fields
    if isinstance(text, str) and text:
        fields["reasoning"] = text
    details = kwargs.get(REASONING_DETAILS)
    if isinstance(details, list) and details:
        fields[REASONING_DETAILS] = details
    return fields


def with_thinking_blocks(message: BaseMessage) -> BaseMessage:
    """An assistant tool-use message with its Anthropic thinking blocks put back in front.

    Anthropic requires the thinking blocks of the assistant turn that made the tool calls to
    come back, signatures unchanged, before its `tool_use` blocks (which ChatAnthropic adds
    from the tool calls). Any other message is returned as it is.
    """
    if not isinstance(message, AIMessage) or not message.tool_calls:
        return message
    blocks = message.additional_kwargs.get(THINKING_BLOCKS)
    if not isinstance(blocks, list) or not blocks:
        return message
    content: list[str | dict[str, Any]] = [dict(block) for block in blocks]
    if isinstance(message.content, str):
        if message.content:
            content.append({"type": "text", "text": message.content})
    else:
        content += [
            block
            for block in message.content
            if not (isinstance(block, dict) and block.get("type") in _THINKING_TYPES)
        ]
    return message.model_copy(update={"content": content})
