"""Thread inspection under `/agent/threads`: a thread's current state and its checkpoints.

A developer who continues or branches a thread through the `/agent` door needs the
checkpoint ids to branch from, and to see what each step wrote. Threads are read in the
caller's namespace (`server.turns.threads`), so a key only ever sees its own threads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from langchain_core.messages import BaseMessage
from langgraph.types import StateSnapshot
from pydantic import BaseModel

from graph.builder import AgentGraph
from graph.errors import ErrorCode
from nodes.messages import message_text
from server.deps import AppStateDep, BrowserCallerDep
from server.errors import OpenAIHTTPError, error_responses
from server.turns.history import checkpoint_id_of, messages_of, read_history
from server.turns.threads import checked_thread_id, scoped_thread_id

__all__ = [
    "CheckpointSummary",
    "MessageSummary",
    "ThreadHistory",
    "ThreadState",
    "router",
    "state_at",
]

router = APIRouter(prefix="/threads", tags=["agent threads"])


class MessageSummary(BaseModel):
    """One message, shortened for a listing."""

    type: str
    text: str
    tool_calls: list[str]
    """Names of the tools the message asks for (AI messages)."""
    name: str | None
    """Tool name of a tool result."""


class CheckpointSummary(BaseModel):
    """One checkpoint of a thread: where to branch from, and what it recorded."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    step: int | None
    source: str | None
    """`input` (a run's input), `loop` (a step of the graph), `update` or `fork`."""
    written_by: list[str]
    """Nodes whose writes this checkpoint holds (`__input__` for a run's input)."""
    next: list[str]
    """Nodes that run after it (empty at the end of a turn)."""
    created_at: str | None
    messages: int
    last_message: MessageSummary | None


class ThreadHistory(BaseModel):
    """The checkpoints of a thread, newest first."""

    thread_id: str
    checkpoints: list[CheckpointSummary]


class ThreadState(BaseModel):
    """A thread at one checkpoint: every state value, messages in LangChain's JSON shape."""

    thread_id: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    created_at: str | None
    step: int | None
    next: list[str]
    values: dict[str, Any]


def _summary(message: BaseMessage) -> MessageSummary:
    calls = [call["name"] for call in getattr(message, "tool_calls", None) or []]
    text = message_text(message)
    return MessageSummary(
        type=message.type,
        text=text if len(text) <= 500 else f"{text[:500]}…",
        tool_calls=calls,
        name=message.name,
    )


def _not_found(thread_id: str) -> OpenAIHTTPError:
    return OpenAIHTTPError(
        404,
        f"No thread found with id '{thread_id}'.",
        code=ErrorCode.THREAD_NOT_FOUND,
        param="thread_id",
    )


def _stored_id(key_id: str, thread_id: str) -> str:
    """The checkpointer's id of the thread the path names (checked as every door checks it).

    Raises:
        OpenAIHTTPError: 400 `invalid_thread_id` for an id no door would have stored.
    """
    checked = checked_thread_id(thread_id, "thread_id")
    if checked is None:
        raise _not_found(thread_id)
    return scoped_thread_id(key_id, checked)


async def state_at(
    graph: AgentGraph,
    thread_id: str,
    stored_id: str,
    checkpoint_id: str | None,
    *,
    param: str = "checkpoint_id",
) -> StateSnapshot:
    """The thread's state at `checkpoint_id` (its latest when None), which must be stored.

    Asked for a checkpoint that is not stored, the graph answers with an empty state that
    echoes the id it was given; that is a 404 here, never a state.

    Args:
        graph: The graph whose checkpointer holds the thread.
        thread_id: The thread id as the client named it (for the error message).
        stored_id: The key-scoped id it is stored under.
        checkpoint_id: The checkpoint asked for, if any.
        param: How the errors name `checkpoint_id`.

    Raises:
        OpenAIHTTPError: 404 `thread_not_found`, or `checkpoint_not_found` when the thread
            is stored without that checkpoint.
    """
    configurable: dict[str, Any] = {"thread_id": stored_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    snapshot = await graph.aget_state({"configurable": configurable})
    if snapshot.created_at is not None and checkpoint_id_of(snapshot.config) is not None:
        return snapshot
    if checkpoint_id:
        latest = await graph.aget_state({"configurable": {"thread_id": stored_id}})
        if latest.created_at is not None:
            raise OpenAIHTTPError(
                404,
                f"No checkpoint with that id in thread '{thread_id}'.",
                code=ErrorCode.CHECKPOINT_NOT_FOUND,
                param=param,
            )
    raise _not_found(thread_id)


@router.get("/{thread_id}/state", responses=error_responses(401, 404))
async def thread_state(
    thread_id: str,
    caller: BrowserCallerDep,
    app: AppStateDep,
    checkpoint_id: Annotated[str | None, Query(description="An earlier checkpoint")] = None,
) -> ThreadState:
    """The thread's values at its latest checkpoint, or at `checkpoint_id`."""
    stored_id = _stored_id(caller.key_id, thread_id)
    snapshot = await state_at(app.graph, thread_id, stored_id, checkpoint_id)
    found = checkpoint_id_of(snapshot.config)
    assert found is not None  # state_at returns stored checkpoints only  # nosec B101
    metadata = snapshot.metadata or {}
    return ThreadState(
        thread_id=thread_id,
        checkpoint_id=found,
        parent_checkpoint_id=checkpoint_id_of(snapshot.parent_config),
        created_at=snapshot.created_at,
        step=metadata.get("step"),
        next=list(snapshot.next),
        values=jsonable_encoder(snapshot.values),
    )


@router.get("/{thread_id}/history", responses=error_responses(401, 404))
async def thread_history(
    thread_id: str,
    caller: BrowserCallerDep,
    app: AppStateDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest checkpoints to list")] = 100,
) -> ThreadHistory:
    """The thread's checkpoints, newest first, each with the node that wrote it."""
    stored_id = _stored_id(caller.key_id, thread_id)
    history = await read_history(app.graph, app.checkpointer, stored_id, limit=limit)
    if not history:
        raise _not_found(thread_id)
    checkpoints: list[CheckpointSummary] = []
    for checkpoint in history:
        snapshot = checkpoint.snapshot
        messages = messages_of(snapshot)
        checkpoints.append(
            CheckpointSummary(
                checkpoint_id=checkpoint.checkpoint_id,
                parent_checkpoint_id=checkpoint.parent_checkpoint_id,
                step=checkpoint.step,
                source=checkpoint.source,
                written_by=checkpoint.written_by,
                next=list(snapshot.next),
                created_at=snapshot.created_at,
                messages=len(messages),
                last_message=_summary(messages[-1]) if messages else None,
            )
        )
    return ThreadHistory(thread_id=thread_id, checkpoints=checkpoints)
