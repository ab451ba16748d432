"""Assistants: one per graph of `langgraph.json`, plus the presets clients save.

`resolve_assistant` is what a run asks: the assistant an id names (its uuid, or the id of
its graph, as LangGraph Server accepts both for a run), with the config and context it runs
with. A graph's own assistant is not stored: its id is derived from the graph id as LangGraph
Server derives it (`system_assistant_id`), so the same id names it on every start, every
replica, and on `langgraph dev`. The presets live in `AppState.assistants`, per API key.

A preset's `context` holds fields of the graph's `Context` (`graph.context`): `model` (the
model alias), `instructions` (the system prompt) and, for tools, `client_tools` (the tools
the client declares, in OpenAI's shape) and `tool_choice` (`"none"`: no tools at all);
`valid_context` checks it. Its `config` is LangGraph's run config (`recursion_limit`, `tags`,
`configurable`...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID, uuid5

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from graph.context import Context
from server.auth import Caller
from server.graph_api.door import not_found
from server.refusals import store_call
from server.stores.assistants import StoredAssistant, now_iso
from server.wiring.state import AppState

__all__ = [
    "GRAPHS",
    "GRAPH_ID",
    "Assistant",
    "resolve_assistant",
    "stored_id",
    "system_assistant",
    "system_assistant_id",
    "valid_context",
]

GRAPH_ID = "agent"
"""The one graph this service serves (`langgraph.json`'s `graphs.agent`)."""

GRAPHS: Final = (GRAPH_ID,)
"""Every graph served: each has its own assistant."""

ASSISTANT_NAMESPACE: Final = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""The uuid5 namespace of the graphs' own assistant ids: the ids LangGraph Server (and
`langgraph dev`) give them, so a client that saved one finds the same assistant here."""

STARTED: Final = now_iso()
"""When this process started: the graphs' own assistants' `created_at`."""

PRESET_CONTEXT_FIELDS: Final = frozenset(
    f.name for f in dataclasses.fields(Context) if f.name != "caller"
)
"""What a preset's context may set: every `Context` field but `caller` (the server's own)."""

_CONTEXT = TypeAdapter(Context)


def system_assistant_id(graph_id: str) -> str:
    """The stable id of a graph's own assistant (the same on every start and replica)."""
    return str(uuid5(ASSISTANT_NAMESPACE, graph_id))


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
    created_at: str = STARTED
    updated_at: str = STARTED

    @property
    def system(self) -> bool:
        """Whether it is a graph's own assistant (not stored, not changeable)."""
        return self.assistant_id in {system_assistant_id(graph) for graph in GRAPHS}

    def to_json(self) -> dict[str, Any]:
        """The assistant on the wire (the SDK's `Assistant`)."""
        return {
            "assistant_id": self.assistant_id,
            "graph_id": self.graph_id,
            "config": self.config,
            "context": self.context,
            "metadata": self.metadata,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def version_json(self) -> dict[str, Any]:
        """One version on the wire (the SDK's `AssistantVersion`)."""
        body = self.to_json()
        del body["updated_at"]
        body["created_at"] = self.updated_at  # when this version was made
        return body

    @classmethod
    def of(cls, stored: StoredAssistant) -> Assistant:
        """A stored preset as an assistant."""
        return cls(**dataclasses.asdict(stored))


def system_assistant(graph_id: str) -> Assistant:
    """A graph's own assistant."""
    return Assistant(
        system_assistant_id(graph_id), graph_id, name=graph_id, metadata={"created_by": "system"}
    )


def system_assistant_of(assistant_id: str) -> Assistant | None:
    """The graph's own assistant that `assistant_id` names (its uuid or graph id), or None."""
    for graph in GRAPHS:
        if assistant_id in (graph, system_assistant_id(graph)):
            return system_assistant(graph)
    return None


async def resolve_assistant(state: AppState, caller: Caller, assistant_id: str) -> Assistant:
    """The assistant `assistant_id` names: a graph's own, or a preset of the caller's key.

    A graph's own is named by its uuid or its graph id.

    Raises:
        Refused: 404 `not_found` for no such assistant (another key's is none).
    """
    system = system_assistant_of(assistant_id)
    if system is not None:
        return system
    stored = await store_call(state.assistants.get(caller.key_id, stored_id(assistant_id)))
    if stored is None:
        raise not_found("assistant", assistant_id)
    return Assistant.of(stored)


def stored_id(assistant_id: str) -> str:
    """`assistant_id`, if a stored preset could have it (PostgreSQL text holds no NUL).

    Raises:
        Refused: 404 `not_found` for an id no preset can have.
    """
    if "\x00" in assistant_id:
        raise not_found("assistant", assistant_id)
    return assistant_id


def valid_context(context: dict[str, Any], *, loc: str = "context") -> dict[str, Any]:
    """`context` if it is a valid preset context (fields of `Context`, their types right).

    Raises:
        RequestValidationError: 422 naming the fields at fault.
    """
    unknown = sorted(set(context) - PRESET_CONTEXT_FIELDS)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", loc, name),
                    "msg": f"Not a field a preset may set; one of {sorted(PRESET_CONTEXT_FIELDS)}",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )
    try:
        _CONTEXT.validate_python(context)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**e, "loc": ("body", loc, *e["loc"])}
                for e in error.errors(include_url=False, include_context=False)
            ]
        ) from error
    return context
