"""Writing a thread's state without a run, for any door: update, copy, delete, list.

`TurnKit` calls these under the thread's lock where they write (`update_state`,
`delete_thread`), inside `store_call` (a store that is away is a refusal), and with the
thread's stored (key-scoped) id; a door never calls them directly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import InvalidUpdateError
from langgraph.types import StateSnapshot, StateUpdate

from graph.builder import AgentGraph
from graph.errors import ErrorCode
from server.refusals import Refused, checkpoint_not_found
from server.turns.threads import ThreadRef

__all__ = ["copy_checkpoints", "delete_checkpoints", "list_states", "write_state"]

COPY_NODE = "__copy__"
"""`as_node` of a fork that copies a checkpoint as it is (LangGraph Studio's "re-run from here")."""

INPUT_NODE = "__input__"
"""`as_node` of values written as a run's input would be (the next step starts the graph)."""


async def write_state(
    graph: AgentGraph,
    checkpointer: BaseCheckpointSaver[Any],
    thread: ThreadRef,
    supersteps: Sequence[Sequence[StateUpdate]],
    *,
    checkpoint_id: str | None = None,
) -> RunnableConfig:
    """Apply each superstep's updates (values, as the node `as_node` would write them) in turn.

    One superstep of one update is `update_state`; several build a history, a checkpoint
    each (`POST /threads`'s `supersteps`). Returns the last new checkpoint's config.

    The checkpoint named is looked up on the checkpointer itself: a read through the graph
    would be kept for the write that follows (`server.telemetry.saver`), in the reader's
    config rather than the writer's.

    Raises:
        Refused: `checkpoint_not_found`; `invalid_request` for a node the graph does not
            have, or values its state cannot take.
    """
    configurable: dict[str, Any] = {"thread_id": thread.stored_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
        if await checkpointer.aget_tuple({"configurable": configurable}) is None:
            raise checkpoint_not_found(thread.client_id)
    known = (COPY_NODE, INPUT_NODE, *graph.nodes)
    for update in (update for superstep in supersteps for update in superstep):
        if update.as_node is not None and update.as_node not in known:
            raise Refused(
                ErrorCode.INVALID_REQUEST,
                f"Node {update.as_node!r} does not exist.",
                param="as_node",
            )
    try:
        return await graph.abulk_update_state({"configurable": configurable}, supersteps)
    except (
        InvalidUpdateError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        NotImplementedError,  # a message LangChain cannot read
    ) as error:
        raise Refused(
            ErrorCode.INVALID_REQUEST, f"Cannot update the state: {error}", param="values"
        ) from error


async def list_states(
    graph: AgentGraph,
    stored_id: str,
    limit: int,
    before: str | None = None,
    metadata: dict[str, Any] | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> list[StateSnapshot]:
    """The thread's states, newest first.

    Args:
        graph: The graph with the checkpointer.
        stored_id: The thread's stored id.
        limit: How many at most.
        before: Only checkpoints older than this one (its id).
        metadata: Only checkpoints whose metadata holds these keys with these values.
        checkpoint: Only checkpoints of its `checkpoint_ns` (and its `checkpoint_id`).
    """
    configurable: dict[str, Any] = {"thread_id": stored_id}
    for name in ("checkpoint_ns", "checkpoint_id"):
        value = (checkpoint or {}).get(name)
        if isinstance(value, str) and (value or name == "checkpoint_ns"):
            configurable[name] = value
    before_config: RunnableConfig | None = None
    if before:
        before_config = {"configurable": {"thread_id": stored_id, "checkpoint_id": before}}
    return [
        snapshot
        async for snapshot in graph.aget_state_history(
            {"configurable": configurable},
            filter=metadata or None,
            before=before_config,
            limit=limit,
        )
    ]


async def copy_checkpoints(
    checkpointer: BaseCheckpointSaver[Any], source_id: str, target_id: str
) -> int:
    """Write every checkpoint of one thread (each namespace, with its pending writes) on another.

    The copies keep their ids and parents, so the new thread has the same history, forks
    and all; how many checkpoints were copied.
    """
    tuples = [item async for item in checkpointer.alist({"configurable": {"thread_id": source_id}})]
    for item in reversed(tuples):  # oldest first
        source = item.config["configurable"]
        parent = (item.parent_config or {}).get("configurable", {})
        config: RunnableConfig = {
            "configurable": {
                "thread_id": target_id,
                "checkpoint_ns": source.get("checkpoint_ns", ""),
                **(
                    {"checkpoint_id": parent["checkpoint_id"]}
                    if parent.get("checkpoint_id")
                    else {}
                ),
            }
        }
        written = await checkpointer.aput(
            config,
            item.checkpoint,
            item.metadata,
            dict(item.checkpoint.get("channel_versions", {})),
        )
        writes: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for task_id, channel, value in item.pending_writes or []:
            writes[task_id].append((channel, value))
        for task_id, task_writes in writes.items():
            await checkpointer.aput_writes(written, task_writes, task_id)
    return len(tuples)


async def delete_checkpoints(checkpointer: BaseCheckpointSaver[Any], stored_id: str) -> bool:
    """Delete every checkpoint of the thread; whether it had any."""
    existed = await checkpointer.aget_tuple({"configurable": {"thread_id": stored_id}})
    await checkpointer.adelete_thread(stored_id)
    return existed is not None
