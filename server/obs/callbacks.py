"""Feeds the metrics from the graph's callbacks without touching the nodes.

`GraphObserver` is a LangChain callback handler bound to the compiled graph
(`graph.with_config(callbacks=[observer])` in the lifespan, via `observe_graphs`), so every
door (/v1, /agent, anything that runs the app's graph) is observed the same way. From the
callbacks it takes:

* node runs (chain start/end whose name is the `langgraph_node` of a `graph:step` run):
  per-node duration and outcome;
* the state updates those nodes return: the router's `route` and `route_reason`, and the
  fallback_provider's new `attempts` (provider outcomes, durations, fallbacks), `provider`
  and the answer's `usage_metadata` (tokens);
* chat model runs: time to first token (the first content or tool-call chunk; for a call
  that was not streamed, the arrival of the whole answer);
* tool runs: calls and duration by tool and outcome.

The checkpointer is timed separately, by `server.obs.saver.InstrumentedSaver`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult
from langgraph.errors import GraphBubbleUp

from graph.builder import AgentGraph
from graph.errors import AllProvidersFailedError
from graph.routing import FALLBACK_PROVIDER, ROUTER
from server.obs.logging import current_request, hash_thread_id
from server.obs.metrics import Metrics, bounded

T = TypeVar("T")

#: Runs remembered between their start and end; a run cancelled without an end callback
#: must not leak, so the oldest are forgotten past this many.
_MAX_OPEN_RUNS: Final = 4096


class _OpenRuns(OrderedDict[UUID, T]):
    """A bounded map of run id -> what was noted at the run's start."""

    def add(self, run_id: UUID, value: T) -> None:
        self[run_id] = value
        while len(self) > _MAX_OPEN_RUNS:
            self.popitem(last=False)


class _NodeRun:
    __slots__ = ("attempts_before", "node", "started", "ttft")

    def __init__(self, node: str, attempts_before: int) -> None:
        self.node = node
        self.attempts_before = attempts_before
        self.started = time.perf_counter()
        self.ttft: float | None = None


def _is_node_run(name: str | None, tags: list[str] | None, metadata: dict[str, Any] | None) -> bool:
    """A graph step's own run, not a routing function or a runnable inside the node."""
    node = (metadata or {}).get("langgraph_node")
    return (
        node is not None
        and name == node
        and any(tag.startswith("graph:step:") for tag in tags or [])
    )


class GraphObserver(BaseCallbackHandler):
    """Turns graph callbacks into metrics; see the module docstring.

    Args:
        metrics: Where to count.
        nodes: The graph's node names (anything else is counted as `other`).
        tools: The server tools' names (likewise).
    """

    run_inline = True
    """Runs in the event loop: each callback is a few dict and counter operations."""

    def __init__(self, metrics: Metrics, *, nodes: Collection[str], tools: Collection[str]) -> None:
        self._metrics = metrics
        self._nodes = frozenset(nodes)
        self._tools = frozenset(tools)
        self._node_runs: _OpenRuns[_NodeRun] = _OpenRuns()
        self._model_runs: _OpenRuns[tuple[UUID | None, float]] = _OpenRuns()
        self._tool_runs: _OpenRuns[tuple[str, float]] = _OpenRuns()

    # --- nodes --------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note when a node starts and how many provider attempts the turn had before it."""
        if not _is_node_run(kwargs.get("name"), tags, metadata):
            return
        node = bounded((metadata or {}).get("langgraph_node"), self._nodes)
        info = current_request.get()
        thread_id = (metadata or {}).get("thread_id")
        if info is not None and info.thread is None and isinstance(thread_id, str):
            # The thread may come from the body or a run config, which the middleware never
            # reads: the logs get its hash from here.
            info.thread = hash_thread_id(thread_id)
        before = inputs.get("attempts") if isinstance(inputs, Mapping) else None
        self._node_runs.add(run_id, _NodeRun(node, len(before) if isinstance(before, list) else 0))

    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Time the node and read the state update it returned."""
        run = self._node_runs.pop(run_id, None)
        if run is None:
            return
        self._node_done(run, "ok")
        if not isinstance(outputs, Mapping):
            return
        if run.node == ROUTER:
            self._route(outputs)
        elif run.node == FALLBACK_PROVIDER:
            attempts = outputs.get("attempts")
            if isinstance(attempts, list):
                self._attempts(attempts[run.attempts_before :])
            provider = outputs.get("provider")
            if isinstance(provider, str):
                self._answered(run, provider, outputs.get("messages"))

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Time the failed node; a chain that ran out of providers still reports its attempts."""
        run = self._node_runs.pop(run_id, None)
        if run is None:
            return
        if isinstance(error, GraphBubbleUp):
            self._node_done(run, "interrupt")
            return
        self._node_done(run, "cancelled" if isinstance(error, asyncio.CancelledError) else "error")
        if isinstance(error, AllProvidersFailedError):
            self._attempts(list(error.attempts[run.attempts_before :]))
            self._metrics.chain_exhausted.inc()

    def _node_done(self, run: _NodeRun, outcome: str) -> None:
        elapsed = time.perf_counter() - run.started
        self._metrics.node_duration.labels(node=run.node, outcome=outcome).observe(elapsed)

    def _route(self, update: Mapping[str, Any]) -> None:
        route, reason = update.get("route"), update.get("route_reason")
        if isinstance(route, str):
            reason_label = reason if isinstance(reason, str) else "none"
            self._metrics.router_decisions.labels(route=route, reason=reason_label).inc()

    def _attempts(self, attempts: Sequence[Mapping[str, Any]]) -> None:
        """Provider outcomes, and a fallback wherever the next attempt is another provider."""
        metrics = self._metrics
        for index, attempt in enumerate(attempts):
            provider = str(attempt.get("provider"))
            outcome = str(attempt.get("outcome"))
            error = attempt.get("error") or "none"
            metrics.provider_requests.labels(provider=provider, outcome=outcome, error=error).inc()
            if outcome != "skipped":
                seconds = float(attempt.get("duration_ms") or 0.0) / 1000
                metrics.provider_duration.labels(provider=provider, outcome=outcome).observe(
                    seconds
                )
            following = attempts[index + 1] if index + 1 < len(attempts) else None
            if outcome != "ok" and following is not None:
                to = str(following.get("provider"))
                if to != provider:
                    metrics.fallbacks.labels(
                        from_provider=provider, to_provider=to, reason=error
                    ).inc()

    def _answered(self, run: _NodeRun, provider: str, messages: object) -> None:
        """Tokens of the answer and its time to first token, credited to its provider."""
        info = current_request.get()
        if info is not None:
            info.provider = provider
        if run.ttft is not None:
            self._metrics.ttft.labels(provider=provider).observe(run.ttft)
            if info is not None and info.ttft_ms is None:
                info.ttft_ms = round(run.ttft * 1000, 1)
        if not isinstance(messages, list) or not messages:
            return
        answer = messages[-1]
        usage = answer.usage_metadata if isinstance(answer, AIMessage) else None
        if usage:
            tokens = self._metrics.tokens
            tokens.labels(provider=provider, direction="input").inc(usage["input_tokens"])
            tokens.labels(provider=provider, direction="output").inc(usage["output_tokens"])
            if info is not None:
                info.input_tokens += usage["input_tokens"]
                info.output_tokens += usage["output_tokens"]

    # --- chat models --------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the first-token clock of one provider call."""
        self._model_runs.add(run_id, (parent_run_id, time.perf_counter()))

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """On the first chunk that carries content or a tool call, stop the clock."""
        started = self._model_runs.get(run_id)
        if started is None:
            return
        message = chunk.message if isinstance(chunk, ChatGenerationChunk) else None
        has_tool_call = isinstance(message, AIMessageChunk) and bool(message.tool_call_chunks)
        if not token and not has_tool_call:
            return
        self._first_token(run_id)

    def _first_token(self, run_id: UUID) -> None:
        """Stop the first-token clock of a call, once (later calls find it stopped)."""
        started = self._model_runs.pop(run_id, None)
        if started is None:
            return
        node_run_id, began = started
        node = self._node_runs.get(node_run_id) if node_run_id is not None else None
        if node is not None:
            node.ttft = time.perf_counter() - began

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """A call not streamed: its first token came with the whole answer, now.

        (Its tokens are counted from the node's answer.)
        """
        self._first_token(run_id)

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Forget the call (its failure is counted from the node's attempts)."""
        self._model_runs.pop(run_id, None)

    # --- tools --------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start timing one tool call."""
        name = (serialized or {}).get("name") or kwargs.get("name")
        self._tool_runs.add(run_id, (bounded(name, self._tools), time.perf_counter()))

    def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """Count a tool call that returned."""
        self._tool_done(run_id, "ok")

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Count a tool call that raised or timed out (the tools node reports it to the model)."""
        timed_out = isinstance(error, TimeoutError | asyncio.CancelledError)
        self._tool_done(run_id, "timeout" if timed_out else "error")

    def _tool_done(self, run_id: UUID, outcome: str) -> None:
        run = self._tool_runs.pop(run_id, None)
        if run is None:
            return
        tool, started = run
        self._metrics.tool_calls.labels(tool=tool, outcome=outcome).inc()
        self._metrics.tool_duration.labels(tool=tool, outcome=outcome).observe(
            time.perf_counter() - started
        )


def observe_graphs(
    metrics: Metrics, tools: Collection[str], *graphs: AgentGraph
) -> tuple[AgentGraph, ...]:
    """The graphs with one shared `GraphObserver` bound to every run (all doors use them)."""
    nodes = {name for graph in graphs for name in graph.nodes}
    observer = GraphObserver(metrics, nodes=nodes, tools=tools)
    return tuple(graph.with_config(callbacks=[observer]) for graph in graphs)
