"""Where a thread may be cut: only before a user message, so a turn is never split.

A turn is a user message and everything up to the next one: the model's tool calls, their
results, the answer. Cutting inside one would send tool results without the call that asked
for them (which providers refuse) or a call without its results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.messages import BaseMessage, HumanMessage


def boundaries(messages: Sequence[BaseMessage]) -> list[int]:
    """Indexes where a cut may fall (`messages[:i]` dropped): each later user message."""
    return [i for i, m in enumerate(messages) if i > 0 and isinstance(m, HumanMessage)]


def keep_from(
    messages: Sequence[BaseMessage], size: Callable[[BaseMessage], int], room: int
) -> int:
    """Where the verbatim tail starts: the most whole recent turns within `room` tokens.

    The latest turn is always kept whole, even over `room` (it is what the model must
    answer); 0 means nothing can be dropped. Counting stops at the first turn that does not
    fit, so a long thread is not measured to its start.
    """
    cuts = boundaries(messages)
    if not cuts:
        return 0
    start = cuts[-1]
    total = sum(size(m) for m in messages[start:])
    for cut in reversed(cuts[:-1]):
        total += sum(size(m) for m in messages[cut:start])
        if total > room:
            return start
        start = cut
    if total + sum(size(m) for m in messages[:start]) <= room:
        return 0
    return start


def chunks(
    messages: Sequence[BaseMessage], size: Callable[[BaseMessage], int], room: int
) -> list[list[BaseMessage]]:
    """`messages` in consecutive pieces of at most `room` tokens (a bigger message alone).

    A summary of more than one model call's worth of messages is folded piece by piece.
    """
    pieces: list[list[BaseMessage]] = []
    current: list[BaseMessage] = []
    used = 0
    for message in messages:
        tokens = size(message)
        if current and used + tokens > room:
            pieces.append(current)
            current, used = [], 0
        current.append(message)
        used += tokens
    if current:
        pieces.append(current)
    return pieces
