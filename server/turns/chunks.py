"""The graph's own stream, in any of its modes: for a door that shows the graph as LangGraph does.

`Turn.chunks(modes)` yields what `graph.astream(stream_mode=modes)` yields, each part as a
`GraphChunk` (its mode, its payload, the namespace of the subgraph it comes from), then a
`ChunksDone` with the run's last values and whether it paused (an `interrupt()`, a
breakpoint, client tools). `events` is a mode too: the callbacks' events of
`astream_events(version="v2")`, streamed beside the graph's other modes from the same run.

The turn is counted once in `agent_turns_total{door, outcome}`: `ok`, `paused` when the run
ended interrupted, `error`, `cancelled`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langgraph.types import Interrupt, StreamMode

from server.turns.prepare import PreparedRun
from server.turns.run import counted

__all__ = ["EVENTS", "GRAPH_MODES", "ChunksDone", "GraphChunk", "graph_chunks"]

EVENTS = "events"
"""The mode of `astream_events`' callback events."""

GRAPH_MODES: tuple[str, ...] = (
    "values",
    "updates",
    "messages",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
)
"""The stream modes of the graph itself (`EVENTS` besides)."""

INTERRUPT = "__interrupt__"
"""The key under which LangGraph streams a pause (in `updates` and `values`)."""


@dataclass(frozen=True)
class GraphChunk:
    """One part of the graph's stream.

    Attributes:
        mode: The stream mode (`values`, `updates`, `messages`, ..., `events`).
        data: Its payload, as the graph streams it (messages as LangChain objects).
        namespace: The subgraph it comes from (`("node:task_id", ...)`); () for the graph.
    """

    mode: str
    data: Any
    namespace: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunksDone:
    """The end of the stream: the run's last values, and whether it paused.

    Attributes:
        values: The graph's last values (without `__interrupt__`).
        interrupted: The run ended paused (an interrupt or a breakpoint).
        interrupts: The interrupts it paused on (none for a breakpoint).
    """

    values: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    interrupts: tuple[Interrupt, ...] = ()


async def graph_chunks(
    run: PreparedRun,
    modes: Sequence[str],
    *,
    subgraphs: bool = False,
    ended: Callable[[str], None] | None = None,
) -> AsyncGenerator[GraphChunk | ChunksDone, None]:
    """Run, yielding the parts of the graph's stream in `modes`, then `ChunksDone`.

    Args:
        run: The prepared run.
        modes: Stream modes of `GRAPH_MODES`, and `EVENTS`; others are refused.
        subgraphs: Stream the subgraphs' parts too (with their namespaces).
        ended: Told how the turn ended, once: `ok`, `paused`, `error` or `cancelled`.

    Raises:
        ValueError: An unknown stream mode.
        Refused: `checkpointer_unavailable` when the store went away mid-turn.
    """
    unknown = [mode for mode in modes if mode not in (*GRAPH_MODES, EVENTS)]
    if unknown:
        raise ValueError(f"unknown stream mode(s): {', '.join(unknown)}")
    wanted = set(modes)
    # `values` and `updates` are always streamed: the last values and the pause come from them.
    graph_modes = [m for m in GRAPH_MODES if m in wanted or m in ("values", "updates")]
    with counted(ended) as outcome:
        values: dict[str, Any] = {}
        interrupted = False
        interrupts: tuple[Interrupt, ...] = ()
        parts = _parts(run, graph_modes, subgraphs=subgraphs, events=EVENTS in wanted)
        async with contextlib.aclosing(parts):
            async for chunk in parts:
                if not chunk.namespace:
                    if chunk.mode == "values" and isinstance(chunk.data, dict):
                        values = {k: v for k, v in chunk.data.items() if k != INTERRUPT}
                    elif (
                        chunk.mode == "updates"
                        and isinstance(chunk.data, dict)
                        and INTERRUPT in chunk.data
                    ):
                        interrupted = True
                        interrupts += tuple(chunk.data[INTERRUPT] or ())
                if chunk.mode in wanted:
                    yield chunk
        outcome.value = "paused" if interrupted else "ok"
        yield ChunksDone(values, interrupted, interrupts)


def _parts(
    run: PreparedRun, modes: list[StreamMode | str], *, subgraphs: bool, events: bool
) -> AsyncGenerator[GraphChunk, None]:
    """The run's stream as `GraphChunk`s (through `astream_events` when `events` is asked)."""
    options: dict[str, Any] = {
        "context": run.context,
        "stream_mode": modes,
        "subgraphs": subgraphs,
        "durability": run.durability,
        "interrupt_before": run.interrupt_before,
        "interrupt_after": run.interrupt_after,
    }
    if events:
        return _with_events(run, options, subgraphs=subgraphs)
    return _graph_parts(run, options, subgraphs=subgraphs)


def _chunk(part: Any, *, subgraphs: bool) -> GraphChunk:
    """A part of a multi-mode stream: `(mode, payload)`, or with subgraphs `(ns, mode, payload)`."""
    if subgraphs:
        namespace, mode, payload = part
        return GraphChunk(mode, payload, tuple(namespace))
    mode, payload = part
    return GraphChunk(mode, payload)


async def _graph_parts(
    run: PreparedRun, options: dict[str, Any], *, subgraphs: bool
) -> AsyncGenerator[GraphChunk, None]:
    stream = run.graph.astream(run.input, run.config, **options)
    async with contextlib.aclosing(cast(AsyncGenerator[Any, None], stream)) as parts:
        async for part in parts:
            yield _chunk(part, subgraphs=subgraphs)


async def _with_events(
    run: PreparedRun, options: dict[str, Any], *, subgraphs: bool
) -> AsyncGenerator[GraphChunk, None]:
    """`astream_events` v2: the graph's own parts come as the root run's `on_chain_stream`."""
    stream = run.graph.astream_events(run.input, run.config, version="v2", **options)
    async with contextlib.aclosing(cast(AsyncGenerator[Any, None], stream)) as events:
        async for event in events:
            if event["event"] == "on_chain_stream" and not event.get("parent_ids"):
                yield _chunk(event["data"]["chunk"], subgraphs=subgraphs)
                continue
            yield GraphChunk(EVENTS, event)
