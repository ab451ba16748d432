"""Runs that outlive their request: each a task owned by the registry, its events kept for a while.

A door whose clients start a run and come back to it (the LangGraph API: a background run,
`join`, a stream joined again after a reload, `on_disconnect: continue`) hands the run's work
to the registry. The registry runs it as a task of its own, numbers and keeps the events it
emits (`RunHandle.emit`), lets any number of readers follow them (`RunHandle.events`, from an
event id on), cancels it (`RunHandle.cancel`), and keeps finished runs a while
(`keep_seconds`) before their events are dropped, and their records after `max_runs`.

Runs of one thread keep an order: `RunRegistry.wait_turn` lets a run wait for those of its
thread started before it (the `enqueue` strategy); the thread's lock (the kit's) still decides
who runs. This registry lives in the process (one replica); the interface (`RunRegistry`) is
what a registry shared by replicas will keep.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from server.refusals import Refused
from server.turns.disconnect import cancel_until_stopped

__all__ = [
    "CancelAction",
    "LocalRunRegistry",
    "RunEvent",
    "RunHandle",
    "RunRegistry",
    "RunStatus",
]

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
CancelAction = Literal["interrupt", "rollback"]
ACTIVE: frozenset[RunStatus] = frozenset({"pending", "running"})


@dataclass(frozen=True)
class RunEvent:
    """One event of a run: its number (from 0), its name and its JSON data."""

    seq: int
    event: str
    data: Any


@dataclass(eq=False)
class RunHandle:
    """One run: what it was asked, where it is, the events it emitted.

    Attributes:
        run_id: Its id (a uuid).
        key_id: The caller whose run it is.
        thread_id: The thread as the client names it; None for a stateless run.
        stored_id: The thread as stored; None for a stateless run.
        assistant_id: The assistant it runs.
        metadata, multitask_strategy, kwargs: As the client asked (shown in the Run object).
        status: Where it is (`pending`, `running`, then how it ended).
        start_checkpoint: The thread's head when the run opened (what a rollback restores).
        result: The run's last values, once it ended (JSON).
        error: `(name, message)` of the failure that ended it.
        cancel_action: How it was cancelled, if it was.
    """

    run_id: str
    key_id: str
    thread_id: str | None
    stored_id: str | None
    assistant_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str = "reject"
    kwargs: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = "pending"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    start_checkpoint: str | None = None
    opened: bool = False
    result: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    cancel_action: CancelAction | None = None
    ended_at: float | None = None
    _events: list[RunEvent] = field(default_factory=list)
    _dropped: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _settled: asyncio.Future[None] | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """Pending or running."""
        return self.status in ACTIVE

    @property
    def last_seq(self) -> int:
        """The number of its latest event (-1: none yet): a reader from now on follows it."""
        return len(self._events) - 1

    def emit(self, event: str, data: Any) -> None:
        """Add an event (its number is the next), and wake its readers."""
        self._events.append(RunEvent(len(self._events), event, data))
        self._wake()

    def set_status(self, status: RunStatus) -> None:
        """Move the run to `status`."""
        self.status = status
        self.updated_at = time.time()
        self._wake()

    @property
    def answered(self) -> bool:
        """Its request has been answered (the run opened, or was queued)."""
        return self._settled is not None and self._settled.done()

    def settle(self, refusal: Refused | None = None) -> None:
        """The run has opened, is queued, or was refused (`refusal`): its request may answer."""
        settled = self._settling()
        if settled.done():
            return
        if refusal is not None:
            settled.set_exception(refusal)
        else:
            settled.set_result(None)

    async def settled(self) -> None:
        """Wait until the run opened, was queued behind another, was refused, or ended.

        Raises:
            Refused: The kit refused to open it (`thread_busy`, ...), before any work.
        """
        settled = self._settling()
        task = self._task
        if task is None:
            await settled
            return
        await asyncio.wait({settled, task}, return_when=asyncio.FIRST_COMPLETED)
        if settled.done():
            settled.result()

    def _settling(self) -> asyncio.Future[None]:
        if self._settled is None:
            self._settled = asyncio.get_running_loop().create_future()
        return self._settled

    async def events(self, after: int = -1) -> AsyncIterator[RunEvent]:
        """The run's events numbered above `after`, as they come, until it has ended."""
        index = after + 1
        while True:
            self._changed.clear()
            while index < len(self._events):
                yield self._events[index]
                index += 1
            if not self.active or self._task is None or self._task.done():
                if index >= len(self._events):
                    return
                continue
            await self._changed.wait()

    async def done(self) -> None:
        """Wait until the run has ended (however it ended)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def cancel(self, action: CancelAction = "interrupt") -> None:
        """Stop the run (its provider call too) and wait until it has stopped."""
        if self._task is None or self._task.done():
            return
        self.cancel_action = action
        await cancel_until_stopped(self._task)

    def end(self, status: RunStatus) -> None:
        """The run ended with `status` (its work calls this last)."""
        self.ended_at = time.time()
        self.set_status(status)
        self.settle()

    def _wake(self) -> None:
        self._changed.set()


RunWork = Callable[[RunHandle], Coroutine[Any, Any, None]]
"""The run itself: emits its events on the handle, and `end`s it."""


class RunRegistry(Protocol):
    """Where the runs of a door live (see the module docstring)."""

    def create(
        self,
        *,
        key_id: str,
        thread_id: str | None,
        stored_id: str | None,
        assistant_id: str,
        metadata: dict[str, Any],
        multitask_strategy: str,
        kwargs: dict[str, Any],
    ) -> RunHandle:
        """A new pending run (not started)."""

    def start(self, handle: RunHandle, work: RunWork) -> None:
        """Run `work` for `handle` in a task the registry owns."""

    def get(self, key_id: str, run_id: str) -> RunHandle | None:
        """The caller's run, if it is known."""

    def of_thread(self, key_id: str, stored_id: str) -> list[RunHandle]:
        """The runs of a thread, newest first."""

    async def wait_turn(self, handle: RunHandle) -> None:
        """Wait until the runs of its thread created before it have ended."""

    def forget(self, handle: RunHandle) -> None:
        """Drop a run's record (its task, if running, is left to end)."""

    async def aclose(self) -> None:
        """Cancel every run still going (the service stops)."""


def _ended(handle: RunHandle) -> None:
    """A run whose task ended without ending it (cancelled before it began) is `interrupted`."""
    if handle.active:
        handle.end("interrupted")


class LocalRunRegistry:
    """The runs of this process (see the module docstring)."""

    def __init__(self, *, keep_seconds: float = 600.0, max_runs: int = 10_000) -> None:
        self._runs: dict[str, RunHandle] = {}
        self._keep_seconds = keep_seconds
        self._max_runs = max_runs

    def create(
        self,
        *,
        key_id: str,
        thread_id: str | None,
        stored_id: str | None,
        assistant_id: str,
        metadata: dict[str, Any],
        multitask_strategy: str,
        kwargs: dict[str, Any],
    ) -> RunHandle:
        """See `RunRegistry.create`."""
        handle = RunHandle(
            run_id=str(uuid.uuid4()),
            key_id=key_id,
            thread_id=thread_id,
            stored_id=stored_id,
            assistant_id=assistant_id,
            metadata=metadata,
            multitask_strategy=multitask_strategy,
            kwargs=kwargs,
        )
        self._runs[handle.run_id] = handle
        self._prune()
        return handle

    def start(self, handle: RunHandle, work: RunWork) -> None:
        """See `RunRegistry.start`."""
        task = asyncio.create_task(work(handle), name=f"run-{handle.run_id}")
        handle._task = task
        task.add_done_callback(lambda _: _ended(handle))

    def get(self, key_id: str, run_id: str) -> RunHandle | None:
        """See `RunRegistry.get`."""
        handle = self._runs.get(run_id)
        return handle if handle is not None and handle.key_id == key_id else None

    def of_thread(self, key_id: str, stored_id: str) -> list[RunHandle]:
        """See `RunRegistry.of_thread`."""
        runs = [h for h in self._runs.values() if h.key_id == key_id and h.stored_id == stored_id]
        return sorted(runs, key=lambda h: h.created_at, reverse=True)

    async def wait_turn(self, handle: RunHandle) -> None:
        """See `RunRegistry.wait_turn`."""
        if handle.stored_id is None:
            return
        earlier = [
            h
            for h in self._runs.values()
            if h.stored_id == handle.stored_id
            and h is not handle
            and h.active
            and h.created_at <= handle.created_at
        ]
        if earlier:
            handle.settle()  # queued: its request answers now
        for other in earlier:
            await other.done()

    def forget(self, handle: RunHandle) -> None:
        """See `RunRegistry.forget`."""
        self._runs.pop(handle.run_id, None)

    async def aclose(self) -> None:
        """See `RunRegistry.aclose`."""
        for handle in list(self._runs.values()):
            await handle.cancel()

    def _prune(self) -> None:
        """Drop the events of runs ended long ago, and the oldest records over `max_runs`."""
        now = time.time()
        for handle in self._runs.values():
            ended = handle.ended_at
            if ended is not None and now - ended > self._keep_seconds and not handle._dropped:
                handle._events.clear()
                handle._dropped = True
        if len(self._runs) > self._max_runs:
            finished = sorted(
                (h for h in self._runs.values() if not h.active), key=lambda h: h.created_at
            )
            for handle in finished[: len(self._runs) - self._max_runs]:
                del self._runs[handle.run_id]
