"""The graph's node names and its pure edge functions.

Nodes never name their successor: a node returns a state update, and an edge function here
reads the state and says where the turn goes next (`graph/builder.py` wires them). So a node
can be put between two others by editing `graph/builder.py` (and this file) only.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage, ToolCall

from graph.state import State

GUARD = "guard"
ROUTER = "router"
COMPACT = "compact"
FALLBACK_PROVIDER = "fallback_provider"
TOOLS = "tools"
RESPOND = "respond"
CLIENT_TOOLS = "client_tools"

STREAMED_NODES = frozenset({GUARD, FALLBACK_PROVIDER, RESPOND})
"""Nodes whose AI message text is streamed to the client as the answer (the guard's refusal,
the model's tokens, `respond`'s closing words); any other node's messages are not."""

GuardVerdict = Literal["accepted", "refused"]
"""What the guard decided; `graph/builder.py` maps each verdict to the next node."""


def pending_client_calls(state: State) -> tuple[AIMessage | None, list[ToolCall]]:
    """The latest AI message and its calls of client tools that have no answer yet."""
    messages = state["messages"]
    index = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], AIMessage)), None
    )
    if index is None:
        return None, []
    last = messages[index]
    assert isinstance(last, AIMessage)  # the index was found by this check  # nosec B101
    client = set(state.get("client_tools_offered", []))
    answered = {getattr(m, "tool_call_id", None) for m in messages[index + 1 :]}
    calls = [c for c in last.tool_calls if c["name"] in client and c.get("id") not in answered]
    return last, calls


def after_guard(state: State) -> GuardVerdict:
    """`refused` when the guard answered the turn itself (the turn ends), else `accepted`."""
    return "refused" if state.get("refused") else "accepted"


def after_router(state: State) -> Literal["compact", "respond"]:
    """Send the turn to the provider chain (through `compact`) unless the router answers."""
    route = state.get("route")
    if route == "model":
        return "compact"
    if route == "respond":
        return "respond"
    raise ValueError(f"router left an unknown route: {route!r}")


def after_model(state: State) -> Literal["tools", "client_tools", "respond"]:
    """Run the tools the model asked for while the turn's tool budget lasts.

    Server tools (and malformed calls) go to `tools`; calls of client tools only go to
    `client_tools`, which pauses the run until the client sends the results.
    """
    last = state["messages"][-1] if state["messages"] else None
    if not isinstance(last, AIMessage):
        raise ValueError(f"the model node must end with an AIMessage, got {type(last).__name__}")
    wants_tools = bool(last.tool_calls or last.invalid_tool_calls)
    within_budget = state.get("tool_rounds", 0) < state.get("tool_budget", 0)
    if not (wants_tools and within_budget):
        return "respond"
    client = set(state.get("client_tools_offered", []))
    if last.invalid_tool_calls or any(c["name"] not in client for c in last.tool_calls):
        return "tools"
    return "client_tools"


def after_tools(state: State) -> Literal["client_tools", "compact"]:
    """Pause for the client's tools of the same AI message, else back to the model.

    Back through `compact`: the tools' results may have made the prompt too long.
    """
    return "client_tools" if pending_client_calls(state)[1] else "compact"
