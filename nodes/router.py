"""The router node: decides the route of a turn, the tools offered and the provider chain."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.prompts import BACKGROUND_TASK_PREFIX
from graph.state import State, empty_usage
from nodes.deps import DepsSource, Node
from nodes.messages import message_text
from nodes.tools import ToolRegistry

_WORD = re.compile(r"[a-z0-9]+")


def select_tools(registry: ToolRegistry, text: str, limit: int) -> list[str]:
    """All tools when few are registered; otherwise the `limit` whose words best match the text.

    Chat clients may register dozens of tools; offering all of them costs tokens and confuses
    small models, so the ones sharing most words with the user's message win (ties keep the
    registry's order, so built-ins come first).
    """
    names = registry.names()
    if len(names) <= limit:
        return names
    words = set(_WORD.findall(text.lower()))

    def score(name: str) -> int:
        tool = registry.get(name)
        described = f"{name} {tool.description if tool else ''}".lower()
        return len(words & set(_WORD.findall(described)))

    ranked = sorted(enumerate(names), key=lambda item: (-score(item[1]), item[0]))
    return [name for _, name in ranked[:limit]]


def make_router(deps: DepsSource) -> Node:
    """Build the router node over the given dependencies."""

    async def router(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        """Reset the turn's bookkeeping and decide where the turn goes."""
        context = runtime.context or Context()
        services = deps()
        turn: dict[str, Any] = {
            "tool_rounds": 0,
            "tool_budget": context.max_tool_rounds,
            "attempts": [],
            "usage": empty_usage(),
            "provider": None,
        }
        last = state["messages"][-1] if state["messages"] else None
        if not isinstance(last, HumanMessage | ToolMessage):
            return {**turn, "route": "respond", "route_reason": "no_user_message"}
        chain = services.providers.resolve(context.model)
        text = message_text(last)
        if text.lstrip().startswith(BACKGROUND_TASK_PREFIX):
            reason, tools = "background_task", []
        else:
            reason = "chat"
            tools = select_tools(services.tools, text, context.max_tools_offered)
        return {
            **turn,
            "route": "model",
            "route_reason": reason,
            "provider_chain": [target.id for target in chain],
            "tools_offered": tools,
        }

    return router
