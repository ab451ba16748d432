"""A thread's state: at its latest checkpoint or another, updated, and its history.

`GET /threads/{id}/state[/{checkpoint_id}]` and `POST .../state/checkpoint` read it;
`POST .../state` writes values as a node would (`as_node`), at a checkpoint to fork from
(`checkpoint_id` or `checkpoint`), under the thread's lock (`TurnKit.update_state`);
`POST|GET .../history` lists its checkpoints newest first (`limit`, `before`, a `metadata`
filter, a `checkpoint` namespace). A thread created here without a checkpoint yet has an
empty state and no history; an unknown thread or checkpoint is a 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from server.graph_api.door import door_router
from server.graph_api.thread_lookup import require
from server.graph_api.thread_shapes import EMPTY_STATE, ThreadFacts, thread_state
from server.wiring.deps import AppStateDep, CallerDep

__all__ = ["router"]

router = door_router(tags=["LangGraph API: thread state"])

HISTORY_LIMIT = 10
MAX_HISTORY_LIMIT = 1000


class CheckpointRef(BaseModel):
    """A checkpoint as LangGraph's clients name it."""

    model_config = ConfigDict(extra="allow")

    checkpoint_id: str | None = None
    checkpoint_ns: str | None = None
    thread_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class StateAtCheckpoint(BaseModel):
    """`POST /threads/{thread_id}/state/checkpoint`."""

    model_config = ConfigDict(extra="allow")

    checkpoint: CheckpointRef
    subgraphs: bool = False


class StateUpdate(BaseModel):
    """`POST /threads/{thread_id}/state`."""

    model_config = ConfigDict(extra="allow")

    values: Any = None
    """What to write (None with `as_node: "__copy__"`: copy the checkpoint as it is)."""
    as_node: str | None = None
    checkpoint_id: str | None = None
    checkpoint: CheckpointRef | None = None


class HistoryQuery(BaseModel):
    """`POST /threads/{thread_id}/history`."""

    model_config = ConfigDict(extra="allow")

    limit: int = Field(default=HISTORY_LIMIT, ge=1, le=MAX_HISTORY_LIMIT)
    before: str | dict[str, Any] | None = None
    """Only checkpoints older than this one: its id, its config, or its checkpoint object."""
    metadata: dict[str, Any] | None = None
    """Only checkpoints whose metadata holds these keys with these values."""
    checkpoint: CheckpointRef | None = None
    """Only checkpoints of its namespace (and with its id)."""


def _before_id(before: str | dict[str, Any] | None) -> str | None:
    if before is None or isinstance(before, str):
        return before or None
    configurable = before.get("configurable")
    source = configurable if isinstance(configurable, dict) else before
    checkpoint_id = source.get("checkpoint_id")
    return checkpoint_id if isinstance(checkpoint_id, str) and checkpoint_id else None


async def _state(
    state: AppStateDep, caller: CallerDep, thread_id: str, checkpoint_id: str | None
) -> dict[str, Any]:
    found = await require(state, caller, thread_id)
    if checkpoint_id is None:
        if found.latest is None:
            return dict(EMPTY_STATE)
        return thread_state(found.latest, found.thread)
    view = await state.turns.read_stored(found.thread, checkpoint_id)
    return thread_state(view.snapshot, found.thread)


@router.get("/threads/{thread_id}/state", summary="A thread's latest state")
async def get_state(
    state: AppStateDep, caller: CallerDep, thread_id: str, subgraphs: bool = False
) -> dict[str, Any]:
    """The thread's state at its latest checkpoint."""
    del subgraphs  # the graph has no subgraphs
    return await _state(state, caller, thread_id, None)


@router.get(
    "/threads/{thread_id}/state/{checkpoint_id}", summary="A thread's state at a checkpoint"
)
async def get_state_at(
    state: AppStateDep,
    caller: CallerDep,
    thread_id: str,
    checkpoint_id: str,
    subgraphs: bool = False,
) -> dict[str, Any]:
    """The thread's state at one of its checkpoints."""
    del subgraphs
    return await _state(state, caller, thread_id, checkpoint_id)


@router.post("/threads/{thread_id}/state/checkpoint", summary="A thread's state at a checkpoint")
async def post_state_at(
    state: AppStateDep,
    caller: CallerDep,
    thread_id: str,
    body: Annotated[StateAtCheckpoint, Body()],
) -> dict[str, Any]:
    """The thread's state at the checkpoint the body names (its latest without an id)."""
    return await _state(state, caller, thread_id, body.checkpoint.checkpoint_id or None)


@router.post("/threads/{thread_id}/state", summary="Update a thread's state")
async def update_state(
    state: AppStateDep, caller: CallerDep, thread_id: str, body: Annotated[StateUpdate, Body()]
) -> dict[str, Any]:
    """Write `values` as `as_node` would; the new checkpoint."""
    found: ThreadFacts = await require(state, caller, thread_id)
    thread = found.thread
    checkpoint_id = body.checkpoint_id or (
        body.checkpoint.checkpoint_id if body.checkpoint else None
    )
    config = await state.turns.update_state(
        thread, body.values, as_node=body.as_node, checkpoint_id=checkpoint_id or None
    )
    configurable = config.get("configurable") or {}
    checkpoint = {
        "thread_id": thread.client_id,
        "checkpoint_ns": str(configurable.get("checkpoint_ns") or ""),
        "checkpoint_id": str(configurable.get("checkpoint_id") or ""),
    }
    return {
        "checkpoint": checkpoint,
        "configurable": checkpoint,
        "checkpoint_id": checkpoint["checkpoint_id"],
    }


async def _history(
    state: AppStateDep, caller: CallerDep, thread_id: str, query: HistoryQuery
) -> list[dict[str, Any]]:
    found = await require(state, caller, thread_id)
    checkpoint = None
    if query.checkpoint is not None:
        checkpoint = query.checkpoint.model_dump(include={"checkpoint_ns", "checkpoint_id"})
    snapshots = await state.turns.state_history(
        found.thread,
        limit=query.limit,
        before=_before_id(query.before),
        metadata=query.metadata,
        checkpoint=checkpoint,
    )
    return [thread_state(snapshot, found.thread) for snapshot in snapshots]


@router.post("/threads/{thread_id}/history", summary="A thread's history")
async def post_history(
    state: AppStateDep,
    caller: CallerDep,
    thread_id: str,
    body: Annotated[HistoryQuery | None, Body()] = None,
) -> list[dict[str, Any]]:
    """The thread's checkpoints, newest first (every branch)."""
    return await _history(state, caller, thread_id, body or HistoryQuery())


@router.get("/threads/{thread_id}/history", summary="A thread's history")
async def get_history(
    state: AppStateDep,
    caller: CallerDep,
    thread_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_LIMIT)] = HISTORY_LIMIT,
    before: Annotated[str | None, Query(max_length=256)] = None,
) -> list[dict[str, Any]]:
    """The thread's checkpoints, newest first (every branch)."""
    return await _history(state, caller, thread_id, HistoryQuery(limit=limit, before=before))
