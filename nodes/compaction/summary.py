"""The prompt that asks a model to summarise: the summary so far and the messages to add.

The messages go as a transcript inside one user message rather than as chat messages: the
summariser must read tool calls and results as text, never be asked to continue them, and
the request must not need the tools they name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from graph.prompts import SUMMARY_PROMPT
from nodes.compaction.tokens import BYTES_PER_TOKEN
from nodes.messages import message_text


def _line(message: BaseMessage) -> str:
    text = message_text(message)
    if isinstance(message, HumanMessage):
        return f"User: {text}"
    if isinstance(message, AIMessage):
        calls = "".join(
            f"\n[calls {c['name']}({json.dumps(c['args'], default=str)})]"
            for c in message.tool_calls
        )
        return f"Assistant: {text}{calls}"
    if isinstance(message, ToolMessage):
        return f"Tool result ({message.name or 'tool'}): {text}"
    if isinstance(message, SystemMessage):
        return f"System: {text}"
    return f"{message.type}: {text}"


def transcript(messages: Sequence[BaseMessage], max_tokens: int) -> str:
    """The messages as plain text, each one cut to fit `max_tokens` in all (it errs high)."""
    limit = max(200, max_tokens * BYTES_PER_TOKEN)
    lines = [_line(m) for m in messages]
    total = sum(len(line) for line in lines)
    if total > limit:
        share = max(100, limit // max(1, len(lines)))
        lines = [line if len(line) <= share else line[:share] + " […]" for line in lines]
    return "\n".join(lines)


def summary_request(previous: str, messages: Sequence[BaseMessage], room: int) -> list[BaseMessage]:
    """The messages of one summary call: fold `messages` into the `previous` summary."""
    parts = []
    if previous.strip():
        parts.append(f"Summary so far:\n{previous.strip()}")
    parts.append(f"Conversation to add:\n{transcript(messages, room)}")
    return [SystemMessage(content=SUMMARY_PROMPT), HumanMessage(content="\n\n".join(parts))]
