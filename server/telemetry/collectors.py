"""Metrics read at each scrape from what keeps its own counts: a connection pool, MCP servers.

Custom collectors, registered by `Metrics.watch_pool` / `Metrics.watch_mcp`
(`server.telemetry.metrics`): each scrape calls the source, so nothing is counted twice and
a gauge is never stale. Labels are the configured MCP server names only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PoolStats = Callable[[], Mapping[str, int]]
"""psycopg_pool's `pool.get_stats()`: gauges and counters of one connection pool."""
McpStats = Callable[[], Mapping[str, Mapping[str, object]]]
"""Each MCP server's `/ready` entry by name (`state`, `tools`, `sessions`, ...)."""

#: `<prefix><name>` gauge -> psycopg_pool stats key, help.
_POOL_GAUGES: Final = (
    ("size", "pool_size", "Connections the pool holds now, in use or idle."),
    ("available", "pool_available", "Idle connections ready to be handed out."),
    ("min_size", "pool_min", "Connections the pool keeps open even when idle."),
    ("max_size", "pool_max", "Most connections the pool may open."),
    ("requests_waiting", "requests_waiting", "Requests waiting for a connection right now."),
)
#: `<prefix><name>_total` counter -> psycopg_pool stats key, help, scale.
_POOL_COUNTERS: Final = (
    ("requests", "requests_num", "Connections asked of the pool.", 1.0),
    (
        "request_wait_seconds",
        "requests_wait_ms",
        "Seconds requests spent waiting for a connection, in all.",
        0.001,
    ),
    (
        "request_errors",
        "requests_errors",
        "Requests that got no connection (timed out, or too many waiting).",
        1.0,
    ),
    (
        "connection_errors",
        "connections_errors",
        "Failed attempts to open a connection (server down, refused, timed out).",
        1.0,
    ),
    (
        "connections_lost",
        "connections_lost",
        "Connections found dead (e.g. after a PostgreSQL restart) and replaced.",
        1.0,
    ),
)


class PoolCollector(Collector):
    """Reads a connection pool's stats at each scrape (the pool keeps the counts itself).

    Args:
        stats: The pool's `get_stats`.
        prefix: Of every family's name, e.g. `agent_db_pool_`.
    """

    def __init__(self, stats: PoolStats, *, prefix: str) -> None:
        self._stats = stats
        self._prefix = prefix

    def describe(self) -> Iterator[Metric]:
        """The families, without reading the pool (registration calls this)."""
        return self._families({})

    def collect(self) -> Iterator[Metric]:
        """The pool's current gauges and counters."""
        return self._families(self._stats())

    def _families(self, stats: Mapping[str, int]) -> Iterator[Metric]:
        prefix = self._prefix
        for name, key, doc in _POOL_GAUGES:
            yield GaugeMetricFamily(prefix + name, doc, value=stats.get(key, 0))
        for name, key, doc, scale in _POOL_COUNTERS:
            # psycopg_pool counts only what happened, so a key appears at its first event.
            yield CounterMetricFamily(prefix + name, doc, value=stats.get(key, 0) * scale)


class McpCollector(Collector):
    """Reads the MCP servers' states at each scrape (labels: the configured server names).

    Args:
        stats: Each server's `/ready` entry by name.
        prefix: Of every family's name, e.g. `agent_mcp_server_`.
    """

    def __init__(self, stats: McpStats, *, prefix: str) -> None:
        self._stats = stats
        self._prefix = prefix

    def describe(self) -> Iterator[Metric]:
        """The families, without reading the servers."""
        return self._families({})

    def collect(self) -> Iterator[Metric]:
        """Each server's gauges and counter."""
        return self._families(self._stats())

    def _families(self, stats: Mapping[str, Mapping[str, object]]) -> Iterator[Metric]:
        prefix = self._prefix
        up = GaugeMetricFamily(
            prefix + "up", "1 while the MCP server's session is up, else 0.", labels=["server"]
        )
        tools = GaugeMetricFamily(
            prefix + "tools", "Tools the MCP server offers the model.", labels=["server"]
        )
        sessions = CounterMetricFamily(
            prefix + "sessions",
            "Sessions opened with the MCP server (more than one: it went away and came back).",
            labels=["server"],
        )
        for name, entry in stats.items():
            up.add_metric([name], 1.0 if entry.get("state") == "up" else 0.0)
            tools.add_metric([name], float(_number(entry.get("tools"))))
            sessions.add_metric([name], float(_number(entry.get("sessions"))))
        yield from (up, tools, sessions)


def _number(value: object) -> int:
    return value if isinstance(value, int) else 0
