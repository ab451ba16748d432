"""A thread's checkpoints as the doors show them: ids, parents, and which node wrote each.

Shared by the `/agent/threads` JSON routes and the HTML inspector (`server.inspector`), so
neither door imports the other. Reads go through the compiled graph and the checkpointer
of the app; the caller passes the thread's stored (key-scoped) id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from graph.builder import AgentGraph

__all__ = [
    "INPUT_WRITER",
    "HistoryCheckpoint",
    "checkpoint_id_of",
    "messages_of",
    "read_history",
    "values_of",
]

INPUT_WRITER = "__input__"
"""`written_by` of a checkpoint that holds a run's input (the new messages of a turn)."""


@dataclass(frozen=True)
class HistoryCheckpoint:
    """One checkpoint of a thread and what is known about how it came to be."""

    snapshot: StateSnapshot
    checkpoint_id: str
    parent_checkpoint_id: str | None
    written_by: list[str]
    """Nodes whose writes this checkpoint holds (`INPUT_WRITER` for a run's input). One
    checkpoint may hold a whole turn (CHECKPOINT_DURABILITY=exit)."""

    @property
    def step(self) -> int | None:
        """The graph's step counter at this checkpoint (-1 for a run's input)."""
        step = (self.snapshot.metadata or {}).get("step")
        return step if isinstance(step, int) else None

    @property
    def source(self) -> str | None:
        """`input` (a run's input), `loop` (a step of the graph), `update` or `fork`."""
        source = (self.snapshot.metadata or {}).get("source")
        return str(source) if source else None


def checkpoint_id_of(config: RunnableConfig | None) -> str | None:
    """The checkpoint id a config names, if any."""
    if not config:
        return None
    value = config.get("configurable", {}).get("checkpoint_id")
    return str(value) if value else None


def values_of(snapshot: StateSnapshot) -> dict[str, Any]:
    """The state values of a snapshot (empty for one that holds none)."""
    return snapshot.values if isinstance(snapshot.values, dict) else {}


def messages_of(snapshot: StateSnapshot) -> list[AnyMessage]:
    """The thread's messages at a snapshot."""
    messages: list[AnyMessage] = values_of(snapshot).get("messages") or []
    return messages


async def read_history(
    graph: AgentGraph,
    checkpointer: BaseCheckpointSaver[Any],
    stored_thread_id: str,
    *,
    limit: int,
) -> list[HistoryCheckpoint]:
    """The newest `limit` checkpoints of a thread (every branch), newest first.

    Args:
        graph: The compiled graph with the checkpointer (it names the nodes).
        checkpointer: The graph's checkpointer (for what each node had seen).
        stored_thread_id: The thread's key-scoped id (`server.turns.threads.scoped_thread_id`).
        limit: How many checkpoints at most.

    Returns:
        The checkpoints, empty when the thread does not exist.
    """
    config: RunnableConfig = {"configurable": {"thread_id": stored_thread_id}}
    # One more than asked, so the oldest listed checkpoint still learns who wrote it.
    snapshots = [s async for s in graph.aget_state_history(config, limit=limit + 1)]
    if not snapshots:
        return []
    # What each node had seen at each checkpoint: a node whose entry changed since the
    # parent ran in between.
    seen = {
        checkpoint_id_of(t.config): t.checkpoint.get("versions_seen", {})
        async for t in checkpointer.alist(config, limit=limit + 1)
    }
    history: list[HistoryCheckpoint] = []
    for snapshot in snapshots[:limit]:
        own_id = checkpoint_id_of(snapshot.config) or ""
        parent_id = checkpoint_id_of(snapshot.parent_config)
        if (snapshot.metadata or {}).get("source") == "input":
            written_by = [INPUT_WRITER]
        else:
            now = seen.get(own_id, {})
            before = seen.get(parent_id, {})
            written_by = [node for node in graph.nodes if now.get(node) != before.get(node)]
        history.append(HistoryCheckpoint(snapshot, own_id, parent_id, written_by))
    return history
