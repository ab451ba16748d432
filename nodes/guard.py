"""The guard node: refuses an over-long turn before any model is called.

A model call costs money and time in proportion to its input, and a provider answers an
oversized prompt with a context-length error only after it has been sent. The guard runs
at the start of every turn, before the router (`graph/builder.py`), and answers such a turn
itself with a short refusal, so no provider ever sees it. The limit is
`Context.max_input_chars` (the `MAX_INPUT_CHARS` setting).

It is also the worked example of "a new node" in docs/extending.md: one module here, plus its
`add_node`/edge lines in `graph/builder.py`. Like every node it only returns a state update
(`refused`, written on every turn); it never names the next node: `after_guard` in
`graph/routing.py` reads `refused`, and `graph/builder.py` maps that verdict to a node.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State, empty_usage
from nodes.messages import message_text

__all__ = ["guard", "refusal_text", "turn_chars"]


def turn_chars(messages: list[BaseMessage]) -> int:
    """Characters of the user's new turn: the human messages after the last AI message."""
    total = 0
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, HumanMessage):
            total += len(message_text(message))
    return total


def refusal_text(size: int, limit: int) -> str:
    """The guard's answer to an over-long turn: what happened and what to do."""
    return (
        f"Your message is too long for me to process: {size} characters, and the limit is "
        f"{limit}. Please shorten it or split it into several messages."
    )


async def guard(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
    """Let the turn through, or answer it with a refusal (`refused`) if it is too long."""
    context = runtime.context or Context()
    size = turn_chars(list(state["messages"]))
    if size <= context.max_input_chars:
        return {"refused": False}
    # The router resets the turn's bookkeeping; it does not run, so the guard does it.
    refusal = AIMessage(
        content=refusal_text(size, context.max_input_chars),
        response_metadata={"finish_reason": "stop", "refused_by": "guard"},
    )
    return {
        "refused": True,
        "messages": [refusal],
        "route": "respond",
        "route_reason": "input_too_long",
        "tools_offered": [],
        "tool_rounds": 0,
        "attempts": [],
        "usage": empty_usage(),
        "provider": None,
        "finish_reason": "stop",
    }
