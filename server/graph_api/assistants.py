"""Assistants: one per graph of `langgraph.json`, plus the presets clients save.

`resolve_assistant` is what a run asks: the assistant an id names (its uuid, or the id of
its graph, as LangGraph Server accepts both), with the config and context it runs with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_DNS, uuid5

from server.auth import Caller
from server.graph_api.door import not_found
from server.wiring.state import AppState

__all__ = ["GRAPH_ID", "Assistant", "resolve_assistant", "system_assistant_id"]

GRAPH_ID = "agent"
"""The one graph this service serves (`langgraph.json`'s `graphs.agent`)."""


def system_assistant_id(graph_id: str) -> str:
    """The stable id of a graph's own assistant (the same on every start and replica)."""
    return str(uuid5(NAMESPACE_DNS, graph_id))


@dataclass(frozen=True)
class Assistant:
    """An assistant: a graph with a preset config and context."""

    assistant_id: str
    graph_id: str
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str = GRAPH_ID
    description: str | None = None
    version: int = 1


async def resolve_assistant(state: AppState, caller: Caller, assistant_id: str) -> Assistant:
    """The assistant `assistant_id` names: a graph's own (by uuid or graph id), or a preset.

    Raises:
        Refused: 404 `not_found` for no such assistant.
    """
    del state, caller  # the saved presets come with the assistants' store
    if assistant_id in (GRAPH_ID, system_assistant_id(GRAPH_ID)):
        return Assistant(system_assistant_id(GRAPH_ID), GRAPH_ID, metadata={"created_by": "system"})
    raise not_found("assistant", assistant_id)
