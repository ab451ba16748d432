"""Usage per API key: every answered model call, credited to its key, alias and provider.

`UsageObserver` is a `TurnObserver` (`nodes/observe.py`) beside `TurnMetrics`: it reads the
update of each `fallback_provider` run, which is one answered model call (and of each
`compact` run that summarised old turns: its summary calls), so usage is
attributed per call and not per turn. The state's `usage` is summed over the turn and its
`provider` is only the last one; a turn whose first call went to one provider and whose
second (after a tool round, or a fallback) went to another is priced at each provider's own
price here. It sees every door that runs the app's graphs, streamed or not, and calls that
were paid for even when the turn then failed or its client left.

The key id and the alias come from the run's `Context` (`caller`, `model`), which the doors
fill in (`server.turns.prepare.run_context`). Label values are bounded: key ids of the configured
keys (`anonymous` on an open service), aliases of the configuration; anything else is `other`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from langchain_core.messages import AIMessage

from graph.context import Context
from graph.routing import COMPACT, FALLBACK_PROVIDER
from graph.state import State
from nodes.observe import NodeOutcome, ToolOutcome
from nodes.providers.catalogue import ProviderCatalogue
from nodes.providers.registry import Price
from server.auth import ANONYMOUS
from server.stores.usage_ledger import ModelCall, UsageLedger
from server.telemetry.metrics import Metrics, bounded
from server.telemetry.node_observer import summary_calls


class UsageObserver:
    """Counts each answered model call in the metrics and the usage ledger.

    Args:
        metrics: `agent_usage_tokens_total`, `agent_usage_cost_usd_total`.
        ledger: The `usage` table's writer (None: metrics only).
        providers: Aliases and endpoint prices.
        keys: The key ids label values may take (`KeyRing.key_ids`).
    """

    def __init__(
        self,
        metrics: Metrics,
        ledger: UsageLedger | None,
        providers: ProviderCatalogue,
        *,
        keys: Collection[str],
    ) -> None:
        self._metrics = metrics
        self._ledger = ledger
        self._providers = providers
        self._keys = frozenset(keys)
        self._aliases = frozenset(providers.alias_names())

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
        """Count the call a `fallback_provider` answered with, and `compact`'s summary calls."""
        if node == COMPACT and update is not None:
            calls = summary_calls(state, update)
            if calls is not None:
                self._count(calls.provider, calls.input_tokens, calls.output_tokens, context)
            return
        if node != FALLBACK_PROVIDER or update is None:
            return
        calls = summary_calls(state, update)  # compacted again after a context-length error
        if calls is not None:
            self._count(calls.provider, calls.input_tokens, calls.output_tokens, context)
        provider = update.get("provider")
        messages = update.get("messages")
        if not isinstance(provider, str) or not isinstance(messages, list) or not messages:
            return
        answer = messages[-1]
        usage = answer.usage_metadata if isinstance(answer, AIMessage) else None
        if not usage:
            return
        self._count(provider, usage["input_tokens"], usage["output_tokens"], context)

    def _count(
        self, provider: str, input_tokens: int, output_tokens: int, context: Context | None
    ) -> None:
        """Credit one call's tokens and cost to the run's key and alias."""
        caller = (context.caller if context else None) or ANONYMOUS
        alias = (context.model if context else None) or self._providers.default_alias
        key, model = bounded(caller, self._keys), bounded(alias, self._aliases)
        price = self._price(provider)
        cost = price.cost(input_tokens, output_tokens) if price is not None else 0.0
        self._metrics.usage(key, model, input_tokens, output_tokens, cost)
        if self._ledger is not None:
            self._ledger.record(ModelCall(key, model, provider, input_tokens, output_tokens, cost))

    def tool_finished(self, tool: str, outcome: ToolOutcome, seconds: float) -> None:
        """Tools cost nothing here."""

    def _price(self, provider: str) -> Price | None:
        """The price of the endpoint a target id names (None: unknown endpoint or no price)."""
        try:
            target = self._providers.target(provider)
        except ValueError:
            return None
        return self._providers.price(target)
