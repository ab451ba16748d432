"""The bodies of the runs' routes: `RunCreate` as LangGraph's clients send it, the `Run` object.

Fields the clients send that this service does not act on yet (`webhook`, `after_seconds`,
`feedback_keys`, ...) are accepted and ignored, as are unknown ones: a newer
SDK must not be refused for a field it adds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.turns.registry import RunHandle

__all__ = ["CommandBody", "RunCreate", "run_object", "wire_time"]

StreamModeName = Literal[
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    "events",
]


class CommandBody(BaseModel):
    """LangGraph's `Command`: resume a paused run, update the state, go to a node."""

    model_config = ConfigDict(extra="ignore")

    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(BaseModel):
    """A run, as `client.runs.stream/create/wait` (and RemoteGraph, agent-chat-ui) send it."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str = Field(description="The assistant: its uuid, or its graph's id.")
    input: Any = Field(
        default=None,
        description='The graph\'s input (`{"messages": [...]}`); null continues from the '
        "thread's head or from `checkpoint` (a fork).",
    )
    command: CommandBody | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    on_disconnect: Literal["cancel", "continue"] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "reject"
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    if_not_exists: Literal["reject", "create"] = "reject"
    webhook: str | None = None
    durability: str | None = Field(
        default=None,
        description="When the run writes checkpoints: `sync`, `async` (after every step, the "
        "default, as LangGraph Server's) or `exit` (once, at the end).",
    )
    after_seconds: float | None = None

    def modes(self) -> list[str]:
        """The stream modes asked for, in order, each once."""
        asked = self.stream_mode if isinstance(self.stream_mode, list) else [self.stream_mode]
        return list(dict.fromkeys(asked)) or ["values"]

    def start_checkpoint(self) -> str | None:
        """The checkpoint the run starts from: `checkpoint_id`, `checkpoint`, or the config's."""
        if self.checkpoint_id:
            return self.checkpoint_id
        if self.checkpoint and self.checkpoint.get("checkpoint_id"):
            return str(self.checkpoint["checkpoint_id"])
        configurable = (self.config or {}).get("configurable") or {}
        found = configurable.get("checkpoint_id")
        return str(found) if found else None


def wire_time(unix: float) -> str:
    """A Unix time as LangGraph writes times: ISO 8601 with the UTC offset."""
    return datetime.fromtimestamp(unix, UTC).isoformat()


def run_object(handle: RunHandle) -> dict[str, Any]:
    """LangGraph's `Run` object of a run."""
    return {
        "run_id": handle.run_id,
        "thread_id": handle.thread_id,
        "assistant_id": handle.assistant_id,
        "created_at": wire_time(handle.created_at),
        "updated_at": wire_time(handle.updated_at),
        "status": handle.status,
        "metadata": handle.metadata,
        "multitask_strategy": handle.multitask_strategy,
        "kwargs": handle.kwargs,
    }
