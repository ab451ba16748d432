"""Feeds the metrics from what the graph's nodes report, without touching the nodes.

`TurnMetrics` is the graph's `TurnObserver` (`nodes/observe.py`): the builder wraps every
node, and the wrapper reports here when the node ends, so every door (/v1, /agent, anything
that runs the app's graph) is observed the same way, with no LangChain callback handler on
the hot path. From those reports it takes:

* node runs: per-node duration and outcome;
* the state updates of the nodes: the router's `route` and `route_reason`, and the
  fallback_provider's new `attempts` (provider outcomes, durations, fallbacks, the time to
  first token of the call that answered), `provider` and the answer's `usage_metadata`;
* the compactions of the compact node (and of the fallback_provider's retry after a
  context-length error): their outcome, prompt sizes before and after, and the summary
  calls' attempts and tokens;
* tool calls: by tool and outcome, with their duration (reported by the tools node).

The checkpointer is timed separately, by `server.telemetry.saver.InstrumentedSaver`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage

from graph.context import Context
from graph.errors import AllProvidersFailedError
from graph.routing import COMPACT, FALLBACK_PROVIDER, ROUTER
from graph.state import State, empty_usage
from nodes.observe import NodeOutcome, ToolOutcome
from server.telemetry.logging import current_request, hash_thread_id
from server.telemetry.metrics import Metrics, bounded


@dataclass(frozen=True)
class SummaryCalls:
    """The tokens of a compact node's summary calls, and the provider that answered last."""

    provider: str
    input_tokens: int
    output_tokens: int


def summary_calls(state: State, update: Mapping[str, Any]) -> SummaryCalls | None:
    """What the summary calls of a node's update used: the growth of the turn's `usage`.

    The compact node, and the fallback_provider when it compacted again after a
    context-length error, add their summary calls' attempts and usage to the turn's, so the
    calls are read off the difference: for the fallback_provider, less its answer (its
    last attempt and its message's `usage_metadata`). None when no summary call answered.
    """
    attempts, usage = update.get("attempts"), update.get("usage")
    if not isinstance(attempts, list) or not isinstance(usage, Mapping):
        return None
    new = attempts[len(state.get("attempts") or []) :]
    answer_in = answer_out = 0
    messages = update.get("messages")
    if isinstance(update.get("provider"), str) and isinstance(messages, list) and messages:
        new = new[:-1]  # the call that answered the turn
        meta = messages[-1].usage_metadata if isinstance(messages[-1], AIMessage) else None
        if meta:
            answer_in, answer_out = meta["input_tokens"], meta["output_tokens"]
    answered = [a for a in new if a["outcome"] == "ok"]
    if not answered:
        return None
    earlier = state.get("usage") or empty_usage()
    grown_in = int(usage.get("input_tokens", 0)) - earlier["input_tokens"] - answer_in
    grown_out = int(usage.get("output_tokens", 0)) - earlier["output_tokens"] - answer_out
    return SummaryCalls(
        provider=answered[-1]["provider"],
        input_tokens=max(0, grown_in),
        output_tokens=max(0, grown_out),
    )


_COMPACTION_OUTCOMES = {
    "summary": "summarised",
    "trim": "trimmed",
    "clip": "clipped",
    "failed": "failed",
}
"""`Compacted.how` -> the `outcome` label of `agent_compactions_total`."""


class TurnMetrics:
    """Turns node and tool reports into metrics (and the access log's facts).

    Args:
        metrics: Where to count.
        nodes: The graph's node names (anything else is counted as `other`).
        tools: The server tools' names (likewise); a live collection such as the tool
            registry, so tools an MCP server adds later are counted under their names.
    """

    def __init__(self, metrics: Metrics, *, nodes: Collection[str], tools: Collection[str]) -> None:
        self._metrics = metrics
        self._nodes = frozenset(nodes)
        self._tools = tools

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
        """Time the node and read the update it returned (or the attempts of its failure)."""
        name = bounded(node, self._nodes)
        self._metrics.node_duration.labels(node=name, outcome=outcome).observe(seconds)
        info = current_request.get()
        if info is not None and info.thread is None and thread_id is not None:
            # The thread may come from the body or a run config, which the middleware never
            # reads: the logs get its hash from here.
            info.thread = hash_thread_id(thread_id)
        before = len(state.get("attempts") or [])
        if isinstance(error, AllProvidersFailedError):
            self._attempts(list(error.attempts[before:]))
            self._metrics.chain_exhausted.inc()
            return
        if update is None:
            return
        if node in (COMPACT, FALLBACK_PROVIDER):
            self._compacted(update.get("compacted"))
        if node == ROUTER:
            self._route(update)
        elif node == COMPACT:
            attempts = update.get("attempts")
            new = attempts[before:] if isinstance(attempts, list) else []
            self._attempts(new)
            self._summary_tokens(summary_calls(state, update))
        elif node == FALLBACK_PROVIDER:
            attempts = update.get("attempts")
            new = attempts[before:] if isinstance(attempts, list) else []
            self._attempts(new)
            provider = update.get("provider")
            if isinstance(provider, str):
                self._answered(provider, new, update.get("messages"))
            self._summary_tokens(summary_calls(state, update))  # a retry's compaction

    def tool_finished(self, tool: str, outcome: ToolOutcome, seconds: float) -> None:
        """Count one server tool call and its duration."""
        name = bounded(tool, self._tools)
        self._metrics.tool_calls.labels(tool=name, outcome=outcome).inc()
        self._metrics.tool_duration.labels(tool=name, outcome=outcome).observe(seconds)

    def _compacted(self, compacted: object) -> None:
        if not isinstance(compacted, Mapping):
            return
        outcome = _COMPACTION_OUTCOMES.get(str(compacted.get("how")), "failed")
        self._metrics.compactions.labels(outcome=outcome).inc()
        for stage in ("before", "after"):
            tokens = compacted.get(stage)
            if isinstance(tokens, int):
                self._metrics.compaction_tokens.labels(stage=stage).observe(tokens)

    def _summary_tokens(self, calls: SummaryCalls | None) -> None:
        """The compact node's summary calls' tokens, to their provider."""
        if calls is None:
            return
        tokens = self._metrics.tokens
        tokens.labels(provider=calls.provider, direction="input").inc(calls.input_tokens)
        tokens.labels(provider=calls.provider, direction="output").inc(calls.output_tokens)

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

    def _answered(
        self, provider: str, attempts: Sequence[Mapping[str, Any]], messages: object
    ) -> None:
        """Tokens of the answer and its time to first token, credited to its provider."""
        info = current_request.get()
        if info is not None:
            info.provider = provider
        answering = attempts[-1] if attempts else {}
        first_token_ms = answering.get("first_token_ms")
        if answering.get("outcome") == "ok" and isinstance(first_token_ms, int | float):
            self._metrics.ttft.labels(provider=provider).observe(first_token_ms / 1000)
            if info is not None and info.ttft_ms is None:
                info.ttft_ms = round(first_token_ms, 1)
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
