"""Token estimates that err high, without a tokenizer.

No tokenizer ships with the service (tiktoken downloads its tables; Anthropic's is not
public), so a prompt is measured by a rule that overcounts every tokenizer in use: one token
per three bytes of UTF-8 (English runs about four characters a token, Chinese and Japanese
about one character, which is three bytes), plus a fixed overhead per message (role and
framing) and per tool call. The provider's own count corrects it (`calibrated`).

Estimates are remembered by message id: a turn's messages come back from the checkpoint as
new objects, but with the same ids, so a long thread is measured once, not on every step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from graph.state import PromptTokens

BYTES_PER_TOKEN: Final = 3
MESSAGE_OVERHEAD: Final = 6
"""Tokens of a message's role and framing (OpenAI's are 3 to 4)."""
TOOL_CALL_OVERHEAD: Final = 10
IMAGE_TOKENS: Final = 1600
"""An image part: OpenAI's high-detail 1024x1024 tile count is 765, Anthropic's about 1600."""
CACHE_SIZE: Final = 32_768
"""Message estimates kept (a few MiB at most); past it the cache starts again (a cheap bound,
not an LRU: a miss only costs measuring the message again)."""


def text_tokens(text: str) -> int:
    """Tokens of a text, at most three bytes each (`str.isascii` is O(1) in CPython)."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return -(-size // BYTES_PER_TOKEN)


def _block_tokens(block: str | dict[str, Any]) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if block.get("type") in ("image_url", "image", "input_image"):
        return IMAGE_TOKENS
    text = block.get("text")
    if isinstance(text, str):
        return text_tokens(text)
    return text_tokens(json.dumps(block, default=str))


def message_tokens(message: BaseMessage) -> int:
    """Estimated tokens of one message as a provider receives it."""
    content = message.content
    if isinstance(content, str):
        tokens = text_tokens(content)
    else:
        tokens = sum(_block_tokens(block) for block in content)
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            args = json.dumps(call["args"], default=str)
            tokens += TOOL_CALL_OVERHEAD + text_tokens(call["name"]) + text_tokens(args)
        for invalid in message.invalid_tool_calls:
            tokens += TOOL_CALL_OVERHEAD + text_tokens(str(invalid.get("args") or ""))
    elif isinstance(message, ToolMessage):
        tokens += text_tokens(message.tool_call_id)
    return tokens + MESSAGE_OVERHEAD


class TokenCounter:
    """Message estimates remembered by message id, and tool schema estimates by name.

    The key is the id, the message type and the length of its content: `add_messages`
    replaces a message by id, and a replacement of the very same length and id is not worth
    a rescan of every message on every step.
    """

    def __init__(self, capacity: int = CACHE_SIZE) -> None:
        self._capacity = capacity
        self._messages: dict[tuple[str, str, int], int] = {}
        self._tools: dict[str, int] = {}

    def message(self, message: BaseMessage) -> int:
        """Estimated tokens of `message`."""
        if message.id is None:
            return message_tokens(message)
        key = (message.id, message.type, len(message.content))
        known = self._messages.get(key)
        if known is None:
            if len(self._messages) >= self._capacity:
                self._messages.clear()
            known = self._messages[key] = message_tokens(message)
        return known

    def messages(self, messages: Iterable[BaseMessage]) -> int:
        """Estimated tokens of all of `messages`."""
        return sum(self.message(m) for m in messages)

    def tools(self, tools: Sequence[BaseTool | dict[str, Any]]) -> int:
        """Estimated tokens of the tool schemas sent with the prompt."""
        total = 0
        for tool in tools:
            if isinstance(tool, dict):
                total += text_tokens(json.dumps(tool, default=str))
                continue
            known = self._tools.get(tool.name)
            if known is None:
                # The schema as OpenAI-shaped providers get it; measured once per tool.
                schema = json.dumps(convert_to_openai_tool(tool), default=str)
                known = self._tools[tool.name] = text_tokens(schema) + TOOL_CALL_OVERHEAD
            total += known
        return total


def calibrated(last: PromptTokens | None) -> float:
    """The factor for this prompt's estimate: what the provider counted for the last one.

    Never below 1: an estimate that errs high stays high. When the last call reported no
    usage (a failure, a provider that sends none) the previous factor holds.
    """
    if last is None:
        return 1.0
    reported, estimated = last.get("reported"), last.get("estimated", 0)
    if reported is None or estimated <= 0:
        return max(1.0, float(last.get("scale", 1.0)))
    return max(1.0, reported / estimated)
