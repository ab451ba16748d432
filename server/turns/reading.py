"""Reading a caller's thread for any door: its state at a checkpoint, and its history.

A route that shows a thread (`/agent/threads/...`, the inspector, a route a developer adds)
asks the kit (`TurnKit.read`) and gets a `ThreadView`; a thread or checkpoint that is not
stored is the same refusal (404) on every door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from graph.builder import AgentGraph
from server.refusals import checkpoint_not_found, thread_not_found
from server.turns.history import (
    HistoryCheckpoint,
    checkpoint_id_of,
    messages_of,
    read_history,
    values_of,
)
from server.turns.threads import ThreadRef

__all__ = ["ThreadView", "read_thread", "state_at"]


async def state_at(
    graph: AgentGraph,
    thread: ThreadRef,
    checkpoint_id: str | None,
    *,
    param: str = "checkpoint_id",
) -> StateSnapshot:
    """The thread's state at `checkpoint_id` (its latest when None), which must be stored.

    Asked for a checkpoint that is not stored, the graph answers with an empty state that
    echoes the id it was given; that is a refusal here, never a state.

    Raises:
        Refused: `thread_not_found`, or `checkpoint_not_found` (naming `param`) when the
            thread is stored without that checkpoint.
    """
    configurable: dict[str, Any] = {"thread_id": thread.stored_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    snapshot = await graph.aget_state({"configurable": configurable})
    if snapshot.created_at is not None and checkpoint_id_of(snapshot.config) is not None:
        return snapshot
    if checkpoint_id:
        latest = await graph.aget_state({"configurable": {"thread_id": thread.stored_id}})
        if latest.created_at is not None:
            raise checkpoint_not_found(thread.client_id, param=param)
    raise thread_not_found(thread.client_id)


@dataclass(frozen=True)
class ThreadView:
    """A caller's stored thread at one checkpoint (`TurnKit.read`)."""

    thread: ThreadRef
    snapshot: StateSnapshot
    _graph: AgentGraph
    _checkpointer: BaseCheckpointSaver[Any]

    @property
    def client_id(self) -> str:
        """The thread id as the client names it."""
        return self.thread.client_id

    @property
    def checkpoint_id(self) -> str:
        """The checkpoint shown."""
        return checkpoint_id_of(self.snapshot.config) or ""

    @property
    def parent_checkpoint_id(self) -> str | None:
        """The checkpoint before it (None for the thread's first)."""
        return checkpoint_id_of(self.snapshot.parent_config)

    @property
    def values(self) -> dict[str, Any]:
        """Every state value at the checkpoint."""
        return values_of(self.snapshot)

    @property
    def messages(self) -> list[AnyMessage]:
        """The thread's messages at the checkpoint."""
        return messages_of(self.snapshot)

    async def history(self, *, limit: int = 100) -> list[HistoryCheckpoint]:
        """The thread's newest `limit` checkpoints (every branch), newest first."""
        return await read_history(
            self._graph, self._checkpointer, self.thread.stored_id, limit=limit
        )


async def read_thread(
    graph: AgentGraph,
    checkpointer: BaseCheckpointSaver[Any],
    thread: ThreadRef,
    *,
    checkpoint_id: str | None = None,
    param: str = "checkpoint_id",
) -> ThreadView:
    """The stored thread at `checkpoint_id` (else its latest), or a refusal (`state_at`)."""
    snapshot = await state_at(graph, thread, checkpoint_id, param=param)
    return ThreadView(thread, snapshot, graph, checkpointer)
