"""The last resort: tool output cut short in the prompt when the latest turn alone is too long.

Turns are only cut whole (`cut.py`), and the latest one is what the model must answer, so a
turn whose tool results outgrow the budget (a few rounds of long outputs on a small model)
cannot be fitted by dropping turns. Then the longest tool results are cut, in the prompt
only: the thread keeps them whole, and `clipped` in the state says how much of each is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from langchain_core.messages import BaseMessage, ToolMessage

from nodes.compaction.tokens import MESSAGE_OVERHEAD, text_tokens
from nodes.messages import message_text

MIN_KEPT_TOKENS: Final = 100
"""A clipped tool result keeps at least this much of its start."""


def _marker(left_out: int) -> str:
    return f"\n[… {left_out} more characters left out to fit the context window]"


MARKER_TOKENS: Final = text_tokens(_marker(10**9))


def clip(
    messages: Sequence[BaseMessage], size: Callable[[BaseMessage], int], excess: int
) -> dict[str, int]:
    """Characters to keep of the longest tool results, so `excess` tokens fewer are sent.

    Returns tool message id -> characters kept (only the ones that are cut); it may not
    reach `excess` when the results are short (the rest is not tool output).
    """
    kept: dict[str, int] = {}
    results = [m for m in messages if isinstance(m, ToolMessage) and m.id]
    for message in sorted(results, key=size, reverse=True):
        if excess <= 0:
            break
        tokens = size(message) - MESSAGE_OVERHEAD
        spare = tokens - MIN_KEPT_TOKENS - MARKER_TOKENS
        if spare <= 0:
            continue
        cut = min(excess + MARKER_TOKENS, spare)
        text = message_text(message)
        kept[str(message.id)] = len(text) * (tokens - cut) // tokens
        excess -= cut - MARKER_TOKENS
    return kept


def clipped(messages: Sequence[BaseMessage], kept: Mapping[str, int]) -> list[BaseMessage]:
    """`messages` with the tool results named in `kept` cut to that many characters."""
    if not kept:
        return list(messages)
    out: list[BaseMessage] = []
    for message in messages:
        keep = kept.get(message.id or "") if isinstance(message, ToolMessage) else None
        if keep is None:
            out.append(message)
            continue
        text = message_text(message)
        short = text[:keep] + _marker(len(text) - keep)
        out.append(message.model_copy(update={"content": short}))
    return out
