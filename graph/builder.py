"""Wires the nodes into the agent graph; the only place with add_node and add_edge calls."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graph.context import Context
from graph.routing import (
    CLIENT_TOOLS,
    FALLBACK_PROVIDER,
    RESPOND,
    ROUTER,
    TOOLS,
    after_model,
    after_router,
    after_tools,
)
from graph.state import InputState, OutputState, State
from nodes.client_tools import client_tools
from nodes.deps import AgentDeps, DepsSource
from nodes.fallback_provider import make_fallback_provider
from nodes.guard import GUARD, guard
from nodes.respond import respond
from nodes.router import make_router
from nodes.tool_node import make_tool_node

AgentGraph = CompiledStateGraph[State, Context, InputState, OutputState]


def build_builder(deps: DepsSource) -> StateGraph[State, Context, InputState, OutputState]:
    """The uncompiled graph, so tests and servers can compile it with their own saver."""
    builder = StateGraph(
        State, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    builder.add_node(GUARD, guard, destinations=(ROUTER, END))
    builder.add_node(ROUTER, make_router(deps))
    builder.add_node(FALLBACK_PROVIDER, make_fallback_provider(deps))
    builder.add_node(TOOLS, make_tool_node(deps))
    builder.add_node(CLIENT_TOOLS, client_tools)
    builder.add_node(RESPOND, respond)

    builder.add_edge(START, GUARD)
    builder.add_conditional_edges(ROUTER, after_router, [FALLBACK_PROVIDER, RESPOND])
    builder.add_conditional_edges(FALLBACK_PROVIDER, after_model, [TOOLS, CLIENT_TOOLS, RESPOND])
    builder.add_conditional_edges(TOOLS, after_tools, [CLIENT_TOOLS, FALLBACK_PROVIDER])
    builder.add_edge(CLIENT_TOOLS, FALLBACK_PROVIDER)
    builder.add_edge(RESPOND, END)
    return builder


def build_graph(
    deps: DepsSource, *, checkpointer: BaseCheckpointSaver[str] | None = None
) -> AgentGraph:
    """Compile the agent graph; without a checkpointer runs are stateless."""
    return build_builder(deps).compile(checkpointer=checkpointer, name="agent")


def default_deps() -> AgentDeps:
    """Services built from the environment on first use (for `langgraph dev` and scripts)."""
    from server.wiring import default_agent_deps

    return default_agent_deps()


graph = build_graph(default_deps)
"""The module-level graph that langgraph.json points at (`langgraph dev` adds its own saver)."""
