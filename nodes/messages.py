"""Helpers over LangChain message content, which providers send as a string or as blocks."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

_TEXT_BLOCKS = frozenset({"text", "text_delta"})


def content_text(content: str | list[str | dict[str, Any]]) -> str:
    """The text of message content: a string, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    return "".join(
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in content
        if isinstance(block, str) or block.get("type") in _TEXT_BLOCKS
    )


def message_text(message: BaseMessage) -> str:
    """The text of a message."""
    return content_text(message.content)
