"""How the graph reports what its nodes and tools did, without callbacks on the hot path.

A LangChain callback handler bound to the whole graph would see every node, but its mere
presence makes LangChain build a run manager, child managers and serialised payloads for
every runnable of every step: about as much CPU as the rest of a turn's graph work. The
nodes are wrapped instead (`observed`, in `graph/builder.py`), and report to the
`TurnObserver` of their dependencies (`AgentDeps.observer`; None: nobody listens), which
the server turns into metrics (`server.telemetry.node_observer`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State

__all__ = ["NodeOutcome", "ToolOutcome", "TurnObserver", "TurnObservers", "observed"]

NodeOutcome = Literal["ok", "error", "cancelled", "interrupt"]
ToolOutcome = Literal["ok", "error", "timeout"]


class TurnObserver(Protocol):
    """What a turn reports as it runs; implementations must be quick and must not raise."""

    def node_finished(
        self,
        node: str,
        state: State,
        update: Mapping[str, Any] | None,
        outcome: NodeOutcome,
        seconds: float,
        *,
        error: BaseException | None = None,
        thread_id: str | None = None,
        context: Context | None = None,
    ) -> None:
        """A node returned `update` (None when it failed with `error`), in a run of `context`."""
        ...

    def tool_finished(self, tool: str, outcome: ToolOutcome, seconds: float) -> None:
        """A server tool call ended."""
        ...


class TurnObservers:
    """Several observers as one: each is told everything, in order."""

    def __init__(self, *observers: TurnObserver) -> None:
        self._observers = observers

    def node_finished(
        self,
        node: str,
        state: State,
        update: Mapping[str, Any] | None,
        outcome: NodeOutcome,
        seconds: float,
        *,
        error: BaseException | None = None,
        thread_id: str | None = None,
        context: Context | None = None,
    ) -> None:
        """Tell every observer."""
        for observer in self._observers:
            observer.node_finished(
                node,
                state,
                update,
                outcome,
                seconds,
                error=error,
                thread_id=thread_id,
                context=context,
            )

    def tool_finished(self, tool: str, outcome: ToolOutcome, seconds: float) -> None:
        """Tell every observer."""
        for observer in self._observers:
            observer.tool_finished(tool, outcome, seconds)


def _outcome(error: BaseException) -> NodeOutcome:
    if isinstance(error, GraphBubbleUp):
        return "interrupt"  # a pause for client tools, not a failure
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "error"


def _thread_id() -> str | None:
    thread = (get_config().get("configurable") or {}).get("thread_id")
    return thread if isinstance(thread, str) else None


ObservedNode = Callable[..., Awaitable[dict[str, Any]]]


def observed(
    name: str, node: ObservedNode, observer: Callable[[], TurnObserver | None]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`node`, timed and reported to the observer under `name` when there is one.

    `node` may take `runtime` (keyword) or only the state, as LangGraph allows.
    """
    wants_runtime = "runtime" in inspect.signature(node).parameters

    async def run(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        listener = observer()
        call = node(state, runtime=runtime) if wants_runtime else node(state)
        if listener is None:
            return await call
        started = time.perf_counter()
        try:
            update = await call
        except (Exception, asyncio.CancelledError) as error:  # reported, then raised again
            listener.node_finished(
                name,
                state,
                None,
                _outcome(error),
                time.perf_counter() - started,
                error=error,
                thread_id=_thread_id(),
                context=runtime.context,
            )
            raise
        listener.node_finished(
            name,
            state,
            update,
            "ok",
            time.perf_counter() - started,
            thread_id=_thread_id(),
            context=runtime.context,
        )
        return update

    run.__name__ = run.__qualname__ = name
    run.__doc__ = node.__doc__
    return run
