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
from pydantic import BaseModel

from nodes.messages import message_text
from server.errors import error_responses
from server.turns.history import messages_of
from server.wiring.deps import BrowserCallerDep, TurnKitDep

__all__ = [
    "CheckpointSummary",
    "MessageSummary",
    "ThreadHistory",
    "ThreadState",
    "router",
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


@router.get("/{thread_id}/state", responses=error_responses(400, 401, 404))
async def thread_state(
    thread_id: str,
    caller: BrowserCallerDep,
    kit: TurnKitDep,
    checkpoint_id: Annotated[str | None, Query(description="An earlier checkpoint")] = None,
) -> ThreadState:
    """The thread's values at its latest checkpoint, or at `checkpoint_id`."""
    thread = await kit.read(caller, thread_id, checkpoint_id=checkpoint_id)
    metadata = thread.snapshot.metadata or {}
    return ThreadState(
        thread_id=thread_id,
        checkpoint_id=thread.checkpoint_id,
        parent_checkpoint_id=thread.parent_checkpoint_id,
        created_at=thread.snapshot.created_at,
        step=metadata.get("step"),
        next=list(thread.snapshot.next),
        values=jsonable_encoder(thread.values),
    )


@router.get("/{thread_id}/history", responses=error_responses(400, 401, 404))
async def thread_history(
    thread_id: str,
    caller: BrowserCallerDep,
    kit: TurnKitDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest checkpoints to list")] = 100,
) -> ThreadHistory:
    """The thread's checkpoints, newest first, each with the node that wrote it."""
    history = await kit.history(caller, thread_id, limit=limit)
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
