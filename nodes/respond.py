"""The respond node: the last step of a turn; settles the final message and finish reason."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from graph.state import FinishReason, State

_LENGTH_REASONS = frozenset({"length", "max_tokens"})


def _finish_reason(message: AIMessage) -> FinishReason:
    reason = str(message.response_metadata.get("finish_reason") or "")
    reason = reason or str(message.response_metadata.get("stop_reason") or "")
    if reason in _LENGTH_REASONS:
        return "length"
    if reason == "content_filter":
        return "content_filter"
    return "stop"


async def respond(state: State) -> dict[str, Any]:
    """Close the turn.

    A model that still asks for tools after the turn's tool budget gets its calls answered as
    not run (so the thread stays valid for every provider) and a plain final message.
    """
    last = state["messages"][-1] if state["messages"] else None
    if state.get("route") == "respond" or not isinstance(last, AIMessage):
        return {
            "messages": [AIMessage(content="There is no user message to answer.")],
            "finish_reason": "stop",
        }
    pending = [*last.tool_calls, *last.invalid_tool_calls]
    if not pending:
        return {"finish_reason": _finish_reason(last)}
    budget = state.get("tool_budget", 0)
    closing: list[Any] = [
        ToolMessage(
            content=f"Not run: the limit of {budget} tool rounds for this turn was reached.",
            tool_call_id=call.get("id") or "",
            name=call.get("name") or "unknown",
            status="error",
        )
        for call in pending
    ]
    closing.append(
        AIMessage(
            content=(
                f"I stopped after {budget} rounds of tool calls without reaching an answer. "
                "Please narrow the question or ask again."
            ),
            response_metadata={"provider": state.get("provider")},
        )
    )
    return {"messages": closing, "finish_reason": "stop"}
