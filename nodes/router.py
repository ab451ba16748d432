"""The router node: decides the route of a turn, the tools offered and the provider chain."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.prompts import BACKGROUND_TASK_PREFIX
from graph.state import State, empty_usage
from nodes.deps import AgentDeps, DepsSource, Node
from nodes.messages import message_text
from nodes.tool_offer import ANY_TOOL, declared_client_tools, forced_tool
from nodes.tools import ToolRegistry
from nodes.tools.knowledge import KNOWLEDGE_TOOL, namespaces_of

_WORD = re.compile(r"[a-z0-9]+")


def _most_relevant(described: list[tuple[str, str]], text: str, limit: int) -> list[str]:
    """All names when there are few; otherwise the `limit` whose words best match the text.

    Chat clients may register dozens of tools; offering all of them costs tokens and confuses
    small models, so the ones sharing most words with the user's message win (ties keep the
    given order, so built-ins come first).
    """
    if len(described) <= limit:
        return [name for name, _ in described]
    words = set(_WORD.findall(text.lower()))

    def score(item: tuple[str, str]) -> int:
        return len(words & set(_WORD.findall(f"{item[0]} {item[1]}".lower())))

    ranked = sorted(enumerate(described), key=lambda pair: (-score(pair[1]), pair[0]))
    return [item[0] for _, item in ranked[:limit]]


def select_tools(registry: ToolRegistry, text: str, limit: int) -> list[str]:
    """The server tools to offer for this text (see `_most_relevant`)."""
    described = []
    for name in registry.names():
        tool = registry.get(name)
        described.append((name, tool.description if tool else ""))
    return _most_relevant(described, text, limit)


def client_tool_names(specs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Name and description of each client tool spec in OpenAI's `tools` shape."""
    described: list[tuple[str, str]] = []
    for spec in specs:
        function = spec.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            described.append((function["name"], str(function.get("description") or "")))
    return described


def select_client_tools(specs: list[dict[str, Any]], text: str, limit: int) -> list[str]:
    """The client's tools to offer; a client list as long as Open WebUI's is narrowed too."""
    return _most_relevant(client_tool_names(specs), text, limit)


def _has_documents(services: AgentDeps, context: Context) -> bool:
    knowledge = services.knowledge
    return knowledge is not None and knowledge.has_documents(namespaces_of(context.caller))


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
            "compacted": None,
            "caller_scoped": False,
        }
        last = state["messages"][-1] if state["messages"] else None
        if not isinstance(last, HumanMessage | ToolMessage):
            return {**turn, "route": "respond", "route_reason": "no_user_message"}
        chain = services.providers.resolve(context.model)
        text = message_text(last)
        client: list[str] = []
        if text.lstrip().startswith(BACKGROUND_TASK_PREFIX):
            reason, tools = "background_task", list[str]()
        elif context.tool_choice == "none":
            reason, tools = "chat", []
        else:
            reason = "chat"
            limit = context.max_tools_offered
            client = select_client_tools(context.client_tools, text, limit)
            forced = forced_tool(context.tool_choice)
            declared = declared_client_tools(context)
            if forced in declared and forced not in client:
                client = [forced, *client[: limit - 1]]  # the tool the client insists on
            # A client tool shadows a server tool of the same name: the client asked for it.
            tools = [t for t in select_tools(services.tools, text, limit) if t not in declared]
            named_server_tool = (
                forced is not None
                and forced not in (ANY_TOOL, *declared, *tools)
                and services.tools.get(forced) is not None
            )
            if forced is not None and named_server_tool:
                tools = [forced, *tools[: limit - 1]]  # a server tool named by the graph's context
            if KNOWLEDGE_TOOL in tools and not _has_documents(services, context):
                tools.remove(KNOWLEDGE_TOOL)  # nothing to find: the tool would only cost tokens
        return {
            **turn,
            "route": "model",
            "route_reason": reason,
            "provider_chain": [target.id for target in chain],
            "tools_offered": tools,
            "client_tools_offered": client,
        }

    return router
