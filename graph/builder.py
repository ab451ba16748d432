"""Wires the nodes into the agent graph; the only place with add_node and add_edge calls.

Importing this module builds nothing: `build_graph(deps)` compiles the graph over the services
the caller gives it. The module-level graph that `langgraph.json` names lives outside `graph/`
(`server/graph_entry.py`), because building services from settings is the server's business.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from graph.context import Context
from graph.routing import (
    CLIENT_TOOLS,
    COMPACT,
    FALLBACK_PROVIDER,
    GUARD,
    RESPOND,
    ROUTER,
    TOOLS,
    after_guard,
    after_model,
    after_router,
    after_tools,
)
from graph.state import InputState, OutputState, State
from nodes.client_tools import client_tools
from nodes.compact import make_compact
from nodes.deps import DepsSource
from nodes.fallback_provider import make_fallback_provider
from nodes.guard import guard
from nodes.observe import ObservedNode, observed
from nodes.respond import respond
from nodes.router import make_router
from nodes.tool_node import make_tool_node

AgentGraph = CompiledStateGraph[State, Context, InputState, OutputState]

T = TypeVar("T")


def on_loop(route: Callable[[State], T]) -> Callable[[State], Awaitable[T]]:
    """An edge function as a coroutine, so LangGraph calls it on the event loop.

    LangGraph runs a plain function in the thread pool when the graph runs async: a thread
    hop for every edge of every step. The edges of `graph/routing.py` are pure and quick.
    """

    @wraps(route)
    async def routed(state: State) -> T:
        return route(state)

    return routed


def build_builder(deps: DepsSource) -> StateGraph[State, Context, InputState, OutputState]:
    """The uncompiled graph, so tests and servers can compile it with their own saver."""
    builder = StateGraph(
        State, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )

    def add(name: str, node: ObservedNode) -> None:
        # Timed and reported to `deps().observer` (the server's metrics) by a wrapper, not
        # by a callback handler: see nodes/observe.py.
        builder.add_node(name, observed(name, node, lambda: deps().observer))

    add(GUARD, guard)
    add(ROUTER, make_router(deps))
    add(COMPACT, make_compact(deps))
    add(FALLBACK_PROVIDER, make_fallback_provider(deps))
    add(TOOLS, make_tool_node(deps))
    add(CLIENT_TOOLS, client_tools)
    add(RESPOND, respond)

    builder.add_edge(START, GUARD)
    # A refused turn ends with the guard's answer; an accepted one goes on to the router.
    builder.add_conditional_edges(GUARD, on_loop(after_guard), {"accepted": ROUTER, "refused": END})
    builder.add_conditional_edges(ROUTER, on_loop(after_router), [COMPACT, RESPOND])
    builder.add_edge(COMPACT, FALLBACK_PROVIDER)
    builder.add_conditional_edges(
        FALLBACK_PROVIDER, on_loop(after_model), [TOOLS, CLIENT_TOOLS, RESPOND]
    )
    builder.add_conditional_edges(TOOLS, on_loop(after_tools), [CLIENT_TOOLS, COMPACT])
    builder.add_edge(CLIENT_TOOLS, COMPACT)
    builder.add_edge(RESPOND, END)
    return builder


def build_graph(
    deps: DepsSource,
    *,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    store: BaseStore | None = None,
) -> AgentGraph:
    """Compile the agent graph; without a checkpointer runs are stateless.

    `store` is the long-term memory a node reads as `runtime.store` (the same on every
    thread); None: the nodes have none.
    """
    return build_builder(deps).compile(checkpointer=checkpointer, store=store, name="agent")
