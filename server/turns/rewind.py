"""A thread's head, and undoing a run: for a door that lets a client roll a run back.

`thread_head` is the checkpoint a run starts from; `rewind` makes the thread's head what it
was there again (the LangGraph API's `rollback`, of a run cancelled or replaced): a copy of
that checkpoint is written as the new head, under the thread's lock (the kit's
`update_state` as `__copy__`), so what the run wrote stays in the history, off the thread's
line; a thread that had no checkpoint loses them all (`delete_thread`).
"""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig

from server.refusals import store_call
from server.turns.history import checkpoint_id_of
from server.turns.kit import TurnKit
from server.turns.state_edits import COPY_NODE
from server.turns.threads import ThreadRef

__all__ = ["rewind", "thread_head"]


async def thread_head(kit: TurnKit, thread: ThreadRef) -> str | None:
    """The id of the thread's latest checkpoint; None for a thread with none.

    Raises:
        Refused: `checkpointer_unavailable`.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread.stored_id}}
    snapshot = await store_call(kit.graph.aget_state(config))
    return checkpoint_id_of(snapshot.config) if snapshot.created_at is not None else None


async def rewind(kit: TurnKit, thread: ThreadRef, checkpoint_id: str | None) -> None:
    """Make the thread's head what it was at `checkpoint_id` (None: no checkpoint) again.

    The kit's own writes, under the thread's lock: a copy of that checkpoint as the new head
    (`TurnKit.update_state` as `__copy__`, Studio's "re-run from here"), or, for a thread
    that had none, `TurnKit.delete_thread`.

    Raises:
        Refused: `thread_busy`; `checkpoint_not_found`; `checkpointer_unavailable`.
    """
    if checkpoint_id is None:
        await kit.delete_thread(thread)
        return
    await kit.update_state(thread, None, as_node=COPY_NODE, checkpoint_id=checkpoint_id)
