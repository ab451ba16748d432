"""An assistant's graph: its JSON schemas, its drawing (Studio's), its subgraphs.

Each answer is derived from the compiled graph the service runs (`AppState.graph`), in the
shape LangGraph Server gives: the schemas of its input, output, state and context (the
context's also as `config_schema`, as LangGraph Server reports a graph with a context
schema), and the nodes and edges of `get_graph()`.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from langgraph.channels.base import BaseChannel
from pydantic import create_model

from graph.builder import AgentGraph
from server.graph_api.assistants import resolve_assistant
from server.graph_api.door import door_router
from server.wiring.deps import AppStateDep, CallerDep
from server.wiring.state import AppState

__all__ = ["drawing", "router", "schemas"]

router = door_router(tags=["LangGraph API: assistants"])


def state_jsonschema(state: AppState) -> dict[str, Any]:
    """The JSON schema of the graph's whole state: every state channel, each optional."""
    graph = state.graph
    keys = graph.builder.schemas[graph.builder.state_schema]
    fields: dict[str, Any] = {
        key: (channel.ValueType, None)
        for key in keys
        if isinstance(channel := graph.channels.get(key), BaseChannel)
    }
    model = create_model(f"{graph.get_name()}_state", **fields)
    return model.model_json_schema()


_SCHEMAS: WeakKeyDictionary[AgentGraph, dict[str, Any]] = WeakKeyDictionary()
"""Each compiled graph's schemas, made once (about 30 ms of pydantic work on the loop)."""


def schemas(state: AppState, graph_id: str) -> dict[str, Any]:
    """The graph's input, output, state, config and context schemas."""
    graph = state.graph
    made = _SCHEMAS.get(graph)
    if made is None:
        context = graph.get_context_jsonschema()
        made = _SCHEMAS[graph] = {
            "input_schema": graph.get_input_jsonschema(),
            "output_schema": graph.get_output_jsonschema(),
            "state_schema": state_jsonschema(state),
            "config_schema": context,
            "context_schema": context,
        }
    return {"graph_id": graph_id, **made}


def drawing(state: AppState, xray: bool | int) -> dict[str, Any]:
    """The graph's nodes and edges, as Studio draws them.

    `{nodes: [{id, type, data}], edges: [{source, target, conditional?, data?}]}`, without
    the Python class paths of the nodes' runnables.
    """
    drawn: dict[str, Any] = state.graph.get_graph(xray=xray).to_json()
    for node in drawn.get("nodes", []):
        data = node.get("data")
        if isinstance(data, dict):
            data.pop("id", None)
    return drawn


def _xray(value: str) -> bool | int:
    """`?xray=`: a boolean, or how many levels of subgraphs to open."""
    if value.isdigit():
        return int(value)
    return value.strip().lower() in ("true", "yes", "on")


@router.get("/assistants/{assistant_id}/schemas", summary="The assistant's graph's schemas")
async def get_schemas(assistant_id: str, state: AppStateDep, caller: CallerDep) -> dict[str, Any]:
    """Input, output, state, config and context schemas of the assistant's graph."""
    assistant = await resolve_assistant(state, caller, assistant_id)
    return schemas(state, assistant.graph_id)


@router.get("/assistants/{assistant_id}/graph", summary="The assistant's graph, drawn")
async def get_graph(
    assistant_id: str, state: AppStateDep, caller: CallerDep, xray: str = "false"
) -> dict[str, Any]:
    """The nodes and edges of the assistant's graph (`xray`: open subgraphs)."""
    await resolve_assistant(state, caller, assistant_id)
    return drawing(state, _xray(xray))


@router.get("/assistants/{assistant_id}/subgraphs", summary="The assistant's subgraphs")
async def get_subgraphs(assistant_id: str, state: AppStateDep, caller: CallerDep) -> dict[str, Any]:
    """The graph's subgraphs by namespace: it has none."""
    await resolve_assistant(state, caller, assistant_id)
    return {}


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}", summary="The assistant's subgraphs")
async def get_subgraphs_of(
    assistant_id: str, namespace: str, state: AppStateDep, caller: CallerDep
) -> dict[str, Any]:
    """The subgraphs under `namespace`: none."""
    del namespace
    await resolve_assistant(state, caller, assistant_id)
    return {}
