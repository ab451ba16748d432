"""Helpers over LangChain message content, which providers send as a string or as blocks."""

from __future__ import annotations

import re
import uuid
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


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    r"""Text that can be encoded as UTF-8 and stored in PostgreSQL.

    Valid JSON can carry a lone surrogate escape (`"\ud800"`) and an escaped NUL: the first
    decodes to a str that no UTF-8 encoder takes (the provider SDKs', the checkpointer's, a
    JSON response's), the second cannot be stored in a PostgreSQL text or jsonb value. A
    lone surrogate becomes U+FFFD, NUL is dropped; `json.loads` has already joined valid
    pairs, so a surrogate left in a str is always lone.
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


def message_text(message: BaseMessage) -> str:
    """The text of a message."""
    return content_text(message.content)


CLIENT_ID_PREFIX = "client-"
"""Ids of messages that came from the client (its history, its tool results)."""


def client_message_id() -> str:
    """A fresh id for a message the client sent: the shim tells them from the graph's own."""
    return f"{CLIENT_ID_PREFIX}{uuid.uuid4().hex}"


def is_client_message(message: BaseMessage) -> bool:
    """True for messages the client sent (so it has seen them) rather than the graph made."""
    return (message.id or "").startswith(CLIENT_ID_PREFIX)
