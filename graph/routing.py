"""Pure edge functions: the only place that names the node a turn goes to next."""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage

from graph.state import State

ROUTER = "router"
FALLBACK_PROVIDER = "fallback_provider"
TOOLS = "tools"
RESPOND = "respond"


def after_router(state: State) -> Literal["fallback_provider", "respond"]:
    """Send the turn to the provider chain unless the router chose to answer directly."""
    route = state.get("route")
    if route == "model":
        return "fallback_provider"
    if route == "respond":
        return "respond"
    raise ValueError(f"router left an unknown route: {route!r}")


def after_model(state: State) -> Literal["tools", "respond"]:
    """Run the tools the model asked for while the turn's tool budget lasts."""
    last = state["messages"][-1] if state["messages"] else None
    if not isinstance(last, AIMessage):
        raise ValueError(f"the model node must end with an AIMessage, got {type(last).__name__}")
    wants_tools = bool(last.tool_calls or last.invalid_tool_calls)
    within_budget = state.get("tool_rounds", 0) < state.get("tool_budget", 0)
    if wants_tools and within_budget:
        return "tools"
    return "respond"
