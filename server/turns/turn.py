"""One opened turn (`TurnKit.open`): run it to the end, or stream it; counted once."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from functools import partial
from typing import Any

from server.settings import Settings
from server.turns import run as running
from server.turns.chunks import ChunksDone, GraphChunk, graph_chunks
from server.turns.events import StreamEvent
from server.turns.prepare import PreparedRun
from server.turns.request import TurnRequest
from server.turns.result import TurnResult
from server.turns.threads import ThreadRef

__all__ = ["LatestCheckpoint", "Turn"]

LatestCheckpoint = Callable[[str], Awaitable[str | None]]
"""The id of a stored thread's latest checkpoint (one indexed query), or None."""


class Turn:
    """One opened turn: run it to the end (`complete`) or stream it (`stream`), once."""

    def __init__(
        self,
        request: TurnRequest,
        run: PreparedRun,
        held: AsyncExitStack,
        *,
        settings: Settings,
        count: Callable[[str, str], None],
        latest_checkpoint: LatestCheckpoint | None = None,
    ) -> None:
        self.settings = settings
        self._count = count
        self._latest_checkpoint = latest_checkpoint
        self.request = request
        self.run = run
        self.held = held
        """What the turn holds (its thread's lock, its stream): released with the turn."""

    @property
    def thread(self) -> ThreadRef | None:
        """The thread the turn runs on; None: stateless."""
        return self.request.thread

    async def complete(self) -> TurnResult:
        """Run to the end (or to a pause for client tools); the result, computed once."""
        return await running.finished(
            self.run,
            show_reasoning=self.settings.show_reasoning,
            ended=partial(self._count, self.request.door),
            finish=self._finish if self.request.wants_checkpoint else None,
        )

    def stream(self) -> AsyncGenerator[StreamEvent, None]:
        """Run, yielding reasoning and text as the provider produces them, then `TurnDone`.

        Reasoning only with SHOW_REASONING; progress lines when the request asks for them
        and PROGRESS_EVENTS is on.
        """
        settings, door = self.settings, self.request.door
        return running.stream(
            self.run,
            show_reasoning=settings.show_reasoning,
            progress=self.request.progress and settings.progress_events,
            ended=partial(self._count, door),
            finish=self._finish if self.request.wants_checkpoint else None,
        )

    def updates(self) -> AsyncGenerator[dict[str, Any], None]:
        """Run, yielding each step's `{node: update}` (a door that shows the graph's steps)."""
        return running.updates(self.run, ended=partial(self._count, self.request.door))

    def chunks(
        self, modes: Sequence[str], *, subgraphs: bool = False
    ) -> AsyncGenerator[GraphChunk | ChunksDone, None]:
        """Run, yielding the graph's own stream in `modes`, then `ChunksDone`.

        Modes: `values`, `updates`, `messages`, `custom`, `debug`, `tasks`, `checkpoints`,
        `events`. For a door that shows the graph as LangGraph does (`server.turns.chunks`);
        the turn is counted once, `paused` when the run ends interrupted.
        """
        return graph_chunks(
            self.run, modes, subgraphs=subgraphs, ended=partial(self._count, self.request.door)
        )

    def detach(self) -> AsyncExitStack:
        """Hand what the turn holds to a response that outlives the door's block (a stream)."""
        return self.held.pop_all()

    async def _finish(self, result: TurnResult) -> TurnResult:
        """The result with the checkpoint the turn ended on (one indexed query)."""
        thread, latest = self.request.thread, self._latest_checkpoint
        if thread is None or latest is None:
            return result
        return replace(result, checkpoint_id=await latest(thread.stored_id))
