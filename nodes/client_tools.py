"""The client_tools node: pauses the run while the client runs its own tools.

Tools the client declared (OpenAI `tools`) are never run on the server. When the model calls
one, this node interrupts the run with the pending calls; the door returns them to the client
as `tool_calls`, and the client's next request resumes the run with the results, keyed by
tool call id (`Command(resume={"call_1": "result", ...})`).
"""

from __future__ import annotations

from typing import Any, TypedDict

from langchain_core.messages import ToolCall, ToolMessage
from langgraph.types import interrupt

from graph.routing import pending_client_calls
from graph.state import State
from nodes.messages import client_message_id


class ClientToolRequest(TypedDict):
    """The interrupt's value: the calls the client must run."""

    tool_calls: list[ToolCall]


async def client_tools(state: State) -> dict[str, Any]:
    """Ask the client for the results of its tool calls, then hand them to the model."""
    last, calls = pending_client_calls(state)
    if last is None:
        raise ValueError("client_tools runs only after an AI message with client tool calls")
    answers = interrupt(ClientToolRequest(tool_calls=calls))
    if not isinstance(answers, dict):
        raise TypeError("resume client_tools with a dict of tool_call_id -> result")
    results = [_result(call, answers) for call in calls]
    client = set(state.get("client_tools_offered", []))
    ran_server_tools = any(c["name"] not in client for c in last.tool_calls)
    rounds = state.get("tool_rounds", 0) + (0 if ran_server_tools else 1)
    return {"messages": results, "tool_rounds": rounds}


def _result(call: ToolCall, answers: dict[Any, Any]) -> ToolMessage:
    """The client's result of one call; its id carries the digest of what the client sent."""
    call_id = call.get("id") or ""
    text = str(answers.get(call_id, "Error: the client sent no result."))
    return ToolMessage(
        content=text,
        tool_call_id=call_id,
        name=call["name"],
        id=client_message_id(text if call_id in answers else None),
    )
