"""Prometheus metrics of one app: the instruments, the methods that feed them, and `/metrics`.

Every app builds its own `CollectorRegistry` (in the lifespan), never the process-global one,
so two apps in one process (tests, workers) never collide. Label values are bounded on
purpose: route templates instead of raw paths, node and tool names from the graph, provider
targets from the configuration, outcomes and error kinds from closed sets. Thread ids, user
text and raw paths never become label values.

Feeds: `server.telemetry.middleware` (HTTP), `server.telemetry.node_observer` (graph nodes,
providers, tools, tokens, time to first token), `server.telemetry.saver` (checkpoints), the
response cache (`cache_request`, `cache_error`), the usage ledger (`usage`,
`usage_store_error`) and, read at each scrape by the collectors of
`server.telemetry.collectors`, the PostgreSQL connection pool (`watch_pool`) and the MCP
servers of MCP_SERVERS (`watch_mcp`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from server.telemetry.collectors import McpCollector, McpStats, PoolCollector, PoolStats

NAMESPACE: Final = "agent"

#: Seconds; HTTP requests include whole streams, so the buckets reach minutes.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
#: Seconds until a provider's first token.
TTFT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30)
#: Estimated prompt tokens, from a small local model's window to the largest hosted ones.
PROMPT_TOKEN_BUCKETS: Final = (1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3, 128e3, 256e3, 512e3, 1e6)
#: Seconds of one checkpoint read or write.
CHECKPOINT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

OTHER: Final = "other"
"""The label value of anything outside a bounded set (unknown path, method, node, ...)."""

HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def bounded(value: str | None, allowed: Iterable[str]) -> str:
    """`value` when it is in `allowed`, else `other`: keeps a label's values a closed set."""
    return value if value is not None and value in allowed else OTHER


class Metrics:
    """The service's instruments on a registry of its own.

    Args:
        registry: Where to register; a fresh `CollectorRegistry` when omitted.
        version: The service version, exported as `agent_build_info{version=...} 1`.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = "") -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        reg = self.registry
        ns = NAMESPACE

        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            namespace=ns,
            registry=reg,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration to the end of the response body (streams included).",
            ["method", "route"],
            namespace=ns,
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.http_in_flight = Gauge(
            "http_requests_in_flight",
            "HTTP requests being served right now.",
            namespace=ns,
            registry=reg,
        )
        self.turns = Counter(
            "turns",
            "Turns run by each door, by how they ended (ok, paused, error, cancelled, refused).",
            ["door", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.active_streams = Gauge(
            "active_streams",
            "Server-sent-event responses open right now, by route template.",
            ["route"],
            namespace=ns,
            registry=reg,
        )
        self.node_duration = Histogram(
            "graph_node_duration_seconds",
            "Duration of one run of a graph node, by node and outcome (ok, error).",
            ["node", "outcome"],
            namespace=ns,
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.router_decisions = Counter(
            "router_decisions",
            "Router decisions by route (model, respond) and reason.",
            ["route", "reason"],
            namespace=ns,
            registry=reg,
        )
        self.provider_requests = Counter(
            "provider_requests",
            "Provider calls by provider target, outcome (ok, error, skipped) and error kind.",
            ["provider", "outcome", "error"],
            namespace=ns,
            registry=reg,
        )
        self.provider_duration = Histogram(
            "provider_request_duration_seconds",
            "Duration of one provider call, by provider target and outcome.",
            ["provider", "outcome"],
            namespace=ns,
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.fallbacks = Counter(
            "provider_fallbacks",
            "Moves from one provider to the next in a chain, by from, to and reason.",
            ["from_provider", "to_provider", "reason"],
            namespace=ns,
            registry=reg,
        )
        self.chain_exhausted = Counter(
            "all_providers_failed",
            "Model calls where every provider of the chain failed or was cooling down.",
            namespace=ns,
            registry=reg,
        )
        self.tokens = Counter(
            "tokens",
            "Tokens by provider target and direction (input, output).",
            ["provider", "direction"],
            namespace=ns,
            registry=reg,
        )
        self.ttft = Histogram(
            "time_to_first_token_seconds",
            "Seconds from a provider call's start to its first content or tool-call token.",
            ["provider"],
            namespace=ns,
            registry=reg,
            buckets=TTFT_BUCKETS,
        )
        self.compactions = Counter(
            "compactions",
            "Prompts compacted to fit the model's context budget, by outcome (summarised; "
            "trimmed: dropped because summarising failed; clipped: the latest turn's tool "
            "results cut short; failed: still over).",
            ["outcome"],
            namespace=ns,
            registry=reg,
        )
        self.compaction_tokens = Histogram(
            "compaction_prompt_tokens",
            "Estimated tokens of a compacted prompt, before and after compaction (stage).",
            ["stage"],
            namespace=ns,
            registry=reg,
            buckets=PROMPT_TOKEN_BUCKETS,
        )
        self.tool_calls = Counter(
            "tool_calls",
            "Server-side tool calls by tool and outcome (ok, error, timeout).",
            ["tool", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.tool_duration = Histogram(
            "tool_duration_seconds",
            "Duration of one tool call, by tool and outcome.",
            ["tool", "outcome"],
            namespace=ns,
            registry=reg,
            buckets=LATENCY_BUCKETS,
        )
        self.cache_requests = Counter(
            "cache_requests",
            "Response cache events by layer (memory, redis, request) and outcome "
            "(hit, miss, store, error, bypass).",
            ["layer", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.cache_errors = Counter(
            "cache_errors",
            "Response cache errors (e.g. Redis unreachable) by layer; serving continues.",
            ["layer"],
            namespace=ns,
            registry=reg,
        )
        self.checkpoint_duration = Histogram(
            "checkpoint_duration_seconds",
            "Checkpointer calls by operation (read, write, write_pending, list, delete).",
            ["operation"],
            namespace=ns,
            registry=reg,
            buckets=CHECKPOINT_BUCKETS,
        )
        self.checkpoint_errors = Counter(
            "checkpoint_errors",
            "Checkpointer calls that raised, by operation.",
            ["operation"],
            namespace=ns,
            registry=reg,
        )
        self.usage_tokens = Counter(
            "usage_tokens",
            "Tokens of answered model calls by API key id, model alias and direction "
            "(input, output).",
            ["key", "model", "direction"],
            namespace=ns,
            registry=reg,
        )
        self.usage_cost = Counter(
            "usage_cost_usd",
            "US dollars of answered model calls at the endpoints' prices, by API key id and "
            "model alias (endpoints without a price add nothing).",
            ["key", "model"],
            namespace=ns,
            registry=reg,
        )
        self.usage_store_errors = Counter(
            "usage_store_errors",
            "Failed writes and reads of the usage table, by operation; serving continues.",
            ["operation"],
            namespace=ns,
            registry=reg,
        )
        self._usage_series: dict[tuple[str, str], tuple[Counter, Counter, Counter]] = {}
        self.build_info = Gauge(
            "build_info",
            "Always 1; the labels say which version runs.",
            ["version"],
            namespace=ns,
            registry=reg,
        )
        self.build_info.labels(version=version or "unknown").set(1)

    # --- hooks for the other parts of the service -------------------------------------

    def count_turn(self, door: str, outcome: str) -> None:
        """One turn of `door` ended with `outcome` (the turn kit's counter)."""
        self.turns.labels(door=door, outcome=outcome).inc()

    def cache_request(self, layer: str, outcome: str) -> None:
        """Count one cache lookup; `layer` and `outcome` must come from closed sets."""
        self.cache_requests.labels(layer=layer, outcome=outcome).inc()

    def cache_error(self, layer: str) -> None:
        """Count one cache failure (the request is still served, without the cache)."""
        self.cache_errors.labels(layer=layer).inc()

    def observe(self, layer: str, outcome: str) -> None:
        """`server.stores.cache.CacheObserver`: one cache event (an `error` is an error too)."""
        self.cache_request(layer, outcome)
        if outcome == "error":
            self.cache_error(layer)

    def usage(
        self, key: str, model: str, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        """Count one answered model call's tokens and cost; `key`, `model` must be bounded.

        The labelled series are looked up once per key and alias (`labels` is most of the
        cost of counting a call); the bounded labels keep that a small set.
        """
        series = self._usage_series.get((key, model))
        if series is None:
            series = (
                self.usage_tokens.labels(key=key, model=model, direction="input"),
                self.usage_tokens.labels(key=key, model=model, direction="output"),
                self.usage_cost.labels(key=key, model=model),
            )
            self._usage_series[(key, model)] = series
        series[0].inc(input_tokens)
        series[1].inc(output_tokens)
        series[2].inc(cost)

    def usage_store_error(self, operation: str) -> None:
        """Count one failed usage write or read (`server.stores.usage_ledger.UsageLedger`)."""
        self.usage_store_errors.labels(operation=operation).inc()

    def watch_pool(self, stats: PoolStats) -> None:
        """Export a connection pool's `get_stats()` as `agent_db_pool_*`, read at each scrape."""
        self.registry.register(PoolCollector(stats, prefix=f"{NAMESPACE}_db_pool_"))

    def watch_mcp(self, stats: McpStats) -> None:
        """Export the MCP servers' states as `agent_mcp_server_*`, read at each scrape."""
        self.registry.register(McpCollector(stats, prefix=f"{NAMESPACE}_mcp_server_"))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
