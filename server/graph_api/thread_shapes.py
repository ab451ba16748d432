"""LangGraph's `Thread` and `ThreadState` objects, from a thread's record and checkpoints.

A thread is shown by the id its client named it with: the stored (key-scoped) id never
leaves the service, wherever the graph or the checkpointer wrote it (`client_view`).

* `Thread`: `thread_id`, `created_at`, `updated_at`, `state_updated_at` (ISO 8601),
  `metadata`, `status`, `values` (null before the first checkpoint), `interrupts`
  (`{task_id: [{id, value}]}`), `config`, `error`. A thread another door started has no
  record: it was created when its first checkpoint was written, and its metadata is empty.
* `status`: `busy` while a run holds the thread's lock here, `interrupted` while its latest
  checkpoint waits on an interrupt, else as the last run left it (`idle`, `error`).
* `ThreadState`: `values`, `next`, `checkpoint` (`{thread_id, checkpoint_ns,
  checkpoint_id}`), `metadata`, `created_at`, `parent_checkpoint`, `tasks` (`{id, name,
  path, error, interrupts, checkpoint, state, result}`), `interrupts`, and the ids again as
  `checkpoint_id`/`parent_checkpoint_id`, as LangGraph Server adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import PregelTask, StateSnapshot

from server.graph_api.wire import jsonable
from server.stores.graph_threads import ThreadRecord, ThreadStatus
from server.turns.threads import ThreadRef

__all__ = [
    "EMPTY_STATE",
    "ThreadFacts",
    "client_view",
    "iso",
    "moment_of",
    "thread_object",
    "thread_state",
]

EMPTY_STATE: dict[str, Any] = {
    "values": {},
    "next": [],
    "tasks": [],
    "metadata": None,
    "created_at": None,
    "checkpoint": None,
    "parent_checkpoint": None,
    "interrupts": [],
    "checkpoint_id": None,
    "parent_checkpoint_id": None,
}
"""The state of a thread created without a checkpoint yet (as LangGraph Server shows it)."""


def moment_of(moment: float | datetime | str | None) -> datetime | None:
    """A time (a Unix time, a datetime, ISO 8601 text) as an aware datetime in UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(moment, datetime):
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment, UTC)


def iso(moment: float | datetime | str | None) -> str | None:
    """A time as ISO 8601 in UTC (a Unix time, a datetime, or ISO text already)."""
    parsed = moment_of(moment)
    return None if parsed is None else parsed.isoformat()


def client_view(value: Any, thread: ThreadRef) -> Any:
    """`value` as JSON, with every occurrence of the stored thread id as the client's id."""
    shown = jsonable(value)
    if thread.stored_id == thread.client_id:
        return shown
    return _replace(shown, thread.stored_id, thread.client_id)


def _replace(value: Any, stored: str, client: str) -> Any:
    if isinstance(value, str):
        return client if value == stored else value
    if isinstance(value, dict):
        return {key: _replace(item, stored, client) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, stored, client) for item in value]
    return value


def _checkpoint(config: RunnableConfig | None, thread: ThreadRef) -> dict[str, Any] | None:
    configurable = (config or {}).get("configurable") or {}
    checkpoint_id = configurable.get("checkpoint_id")
    if not checkpoint_id:
        return None
    shown: dict[str, Any] = {
        "thread_id": thread.client_id,
        "checkpoint_ns": str(configurable.get("checkpoint_ns") or ""),
        "checkpoint_id": str(checkpoint_id),
    }
    if configurable.get("checkpoint_map"):
        shown["checkpoint_map"] = jsonable(configurable["checkpoint_map"])
    return shown


def _task(task: PregelTask, thread: ThreadRef) -> dict[str, Any]:
    state = task.state
    return {
        "id": task.id,
        "name": task.name,
        "path": jsonable(task.path),
        "error": None if task.error is None else f"{type(task.error).__name__}: {task.error}",
        "interrupts": jsonable(list(task.interrupts)),
        "checkpoint": _checkpoint(state, thread) if isinstance(state, dict) else None,
        "state": thread_state(state, thread) if isinstance(state, StateSnapshot) else None,
        "result": jsonable(task.result),
    }


def thread_state(snapshot: StateSnapshot, thread: ThreadRef) -> dict[str, Any]:
    """The `ThreadState` of one checkpoint of the thread."""
    checkpoint = _checkpoint(snapshot.config, thread)
    parent = _checkpoint(snapshot.parent_config, thread)
    shown = {
        "values": snapshot.values,
        "next": list(snapshot.next),
        "tasks": [_task(task, thread) for task in snapshot.tasks],
        "metadata": snapshot.metadata,
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": list(snapshot.interrupts),
        "checkpoint_id": None if checkpoint is None else checkpoint["checkpoint_id"],
        "parent_checkpoint_id": None if parent is None else parent["checkpoint_id"],
    }
    return dict(client_view(shown, thread))


def interrupts_of(snapshot: StateSnapshot | None) -> dict[str, list[Any]]:
    """The interrupts the checkpoint waits on, by the task that raised them."""
    if snapshot is None:
        return {}
    return {task.id: jsonable(list(task.interrupts)) for task in snapshot.tasks if task.interrupts}


@dataclass(frozen=True)
class ThreadFacts:
    """What the door knows of a thread: its record, its latest checkpoint, its first."""

    thread: ThreadRef
    record: ThreadRecord | None
    latest: StateSnapshot | None
    started: datetime | None = None
    """When its first checkpoint was written (for a thread without a record)."""
    busy: bool = False
    """A run holds its lock on this replica."""

    @property
    def status(self) -> ThreadStatus:
        """`busy`, `interrupted`, else the record's (`idle` without one).

        A run that was stopped leaves its record `interrupted` with no pending interrupt
        (its steps so far kept, as LangGraph Server shows a cancelled run's thread).
        """
        if self.busy or (self.record is not None and self.record.status == "busy"):
            return "busy"
        if interrupts_of(self.latest):
            return "interrupted"
        if self.record is not None and self.record.status == "error":
            return "error"
        if self.record is not None and self.record.status == "interrupted" and self._record_current:
            return "interrupted"
        return "idle"

    @property
    def _record_current(self) -> bool:
        """Whether the record is newer than the thread's latest checkpoint.

        Other doors write no record: a turn of theirs since leaves a newer checkpoint.
        """
        if self.record is None or self.latest is None or not self.latest.created_at:
            return True
        written = datetime.fromisoformat(self.latest.created_at).timestamp()
        return self.record.updated_at >= written

    @property
    def created_at(self) -> float | datetime | None:
        """The record's creation, else the first checkpoint's."""
        if self.record is not None:
            return self.record.created_at
        return self.started

    @property
    def state_updated_at(self) -> float | datetime | str | None:
        """When its latest checkpoint was written (its creation before it has one)."""
        if self.latest is not None and self.latest.created_at:
            return self.latest.created_at
        return self.created_at

    @property
    def updated_at(self) -> str | None:
        """The later of its record's last change and its latest checkpoint."""
        record = moment_of(self.record.updated_at if self.record else None)
        times = [moment_of(self.state_updated_at), record]
        return iso(max((moment for moment in times if moment), default=None))


def thread_object(facts: ThreadFacts) -> dict[str, Any]:
    """The thread as LangGraph's `Thread`."""
    record = facts.record
    latest = facts.latest
    return {
        "thread_id": facts.thread.client_id,
        "created_at": iso(facts.created_at),
        "updated_at": facts.updated_at,
        "state_updated_at": iso(facts.state_updated_at),
        "metadata": client_view(record.metadata if record else {}, facts.thread),
        "status": facts.status,
        "config": {},
        "values": None if latest is None else client_view(latest.values, facts.thread),
        "interrupts": client_view(interrupts_of(latest), facts.thread),
        "error": record.error if record is not None and facts.status == "error" else None,
    }
