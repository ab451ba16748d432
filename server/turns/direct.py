"""A run on LangGraph's own input (`TurnRequest.direct`): nothing reconciled, nothing required.

The LangGraph API's clients (langgraph-sdk, RemoteGraph, agent-chat-ui, Studio) speak the
graph's own language: they send the input the graph's reducers take, a `Command` to resume a
paused run or to steer it, or nothing at all to continue from a checkpoint ("re-run from
here"). So the run is prepared as LangGraph Server prepares it: the messages are appended by
the graph's `add_messages` (a message with an id already stored replaces it, as the reducer
decides), a `Command` is passed as is, and a named checkpoint is where the run starts (a
fork). The kit's guards stay: images named by reference are refused, inline ones are stored
as every door stores them, and a checkpoint that is not stored is a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import All, Command, Durability

from graph.builder import AgentGraph
from graph.context import Context
from graph.state import InputState
from nodes.images import ImageStore, externalize
from server.refusals import checkpoint_not_found, thread_not_found
from server.turns.prepare import (
    PreparedRun,
    refuse_image_references,
    stateless_run,
    thread_config,
)
from server.turns.request import TurnRequest
from server.turns.threads import ThreadRef

__all__ = ["direct_run", "direct_stateless_run", "prepare_direct"]


async def prepare_direct(
    graphs: tuple[AgentGraph, AgentGraph],
    request: TurnRequest,
    context: Context,
    *,
    durability: Durability,
    images: ImageStore | None,
) -> PreparedRun:
    """The run of a `direct` turn (`TurnKit.open` calls it, under the thread's lock).

    `graphs` are the kit's graph with the checkpointer and its stateless one: on the
    request's thread the first (at the request's durability, else `durability`:
    CHECKPOINT_DURABILITY), without a thread the second.
    """
    graph, stateless = graphs
    if request.thread is None:
        return direct_stateless_run(
            stateless,
            request.messages,
            context,
            config=request.config,
            interrupt_before=request.interrupt_before,
            interrupt_after=request.interrupt_after,
        )
    return await direct_run(
        graph,
        request.messages,
        request.thread,
        context,
        command=request.command,
        config=request.config,
        checkpoint_id=request.checkpoint_id,
        durability=request.durability or durability,
        images=images,
        interrupt_before=request.interrupt_before,
        interrupt_after=request.interrupt_after,
    )


async def direct_run(
    graph: AgentGraph,
    messages: Sequence[AnyMessage],
    thread: ThreadRef,
    context: Context,
    *,
    command: Command[Any] | None = None,
    config: RunnableConfig | None = None,
    checkpoint_id: str | None = None,
    durability: Durability = "exit",
    images: ImageStore | None = None,
    interrupt_before: All | Sequence[str] | None = None,
    interrupt_after: All | Sequence[str] | None = None,
) -> PreparedRun:
    """The run of LangGraph's own input on `thread` (see the module docstring).

    Args:
        graph: The graph with the checkpointer.
        messages: The input's messages, appended by the graph's reducer.
        thread: The thread, as stored.
        context: The run's options (`run_context`).
        command: Passed to the graph as is, in place of the messages.
        config: The door's own run config (callbacks, tags, metadata); the thread is added.
        checkpoint_id: Start from this checkpoint of the thread (a fork).
        durability: When the run writes its checkpoints (CHECKPOINT_DURABILITY).
        images: Where the thread keeps its images (see `prepare_run`).
        interrupt_before: LangGraph's breakpoints: the nodes to pause before.
        interrupt_after: The nodes to pause after.

    Raises:
        Refused: 400 for a message that names a stored image itself; `thread_not_found`
            or `checkpoint_not_found` for a checkpoint that is not stored.
    """
    refuse_image_references(messages)
    run_config = thread_config(thread, config, checkpoint_id)
    if checkpoint_id is not None:
        await _require_checkpoint(graph, thread, run_config)
    run_input: InputState | Command[Any] | None = None
    if command is not None:
        run_input = command
    elif messages:
        new = list(messages)
        if images is not None:
            new = await externalize(new, images)
        run_input = InputState(messages=new)
    return PreparedRun(
        graph,
        run_input,
        run_config,
        context,
        durability=durability,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
    )


async def _require_checkpoint(graph: AgentGraph, thread: ThreadRef, config: RunnableConfig) -> None:
    """A refusal unless the checkpoint `config` names is stored."""
    snapshot = await graph.aget_state(config)
    if snapshot.created_at is not None:
        return
    latest = await graph.aget_state({"configurable": {"thread_id": thread.stored_id}})
    if latest.created_at is not None:
        raise checkpoint_not_found(thread.client_id, param="checkpoint_id")
    raise thread_not_found(thread.client_id)


def direct_stateless_run(
    graph: AgentGraph,
    messages: Sequence[AnyMessage],
    context: Context,
    *,
    config: RunnableConfig | None = None,
    interrupt_before: All | Sequence[str] | None = None,
    interrupt_after: All | Sequence[str] | None = None,
) -> PreparedRun:
    """A run of LangGraph's own input that stores nothing (no thread; nothing required)."""
    run = stateless_run(graph, messages, context, config=config, answerable=False)
    return replace(run, interrupt_before=interrupt_before, interrupt_after=interrupt_after)
