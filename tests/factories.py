"""Builders of graph dependencies for tests: provider chains pointed at fake upstreams."""

from __future__ import annotations

from collections.abc import Mapping

from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import AgentGraph, build_graph
from nodes.deps import AgentDeps, RetryPolicy
from nodes.providers.catalogue import ProviderCatalogue, ProviderTarget
from nodes.providers.cooldown import InProcessCooldowns
from nodes.providers.registry import ProviderConfig
from nodes.tools import ToolConfig, build_tool_registry


def make_deps(
    chain: list[str],
    urls: Mapping[str, str],
    *,
    timeout: float = 5.0,
    max_retries: int = 0,
    cooldown_failures: int = 100,
    cooldown_seconds: float = 60.0,
    max_retry_after: float = 5.0,
) -> AgentDeps:
    """Deps whose alias `m` maps to `chain`; each kind in `urls` points at a fake upstream."""
    configs = {
        kind: ProviderConfig(kind=kind, base_url=url, timeout=timeout, max_retries=max_retries)
        for kind, url in urls.items()
    }
    catalogue = ProviderCatalogue(
        aliases={"m": [ProviderTarget.parse(spec) for spec in chain]},
        default_alias="m",
        configs=configs,
    )
    return AgentDeps(
        providers=catalogue,
        tools=build_tool_registry(ToolConfig(load_plugins=False)),
        cooldowns=InProcessCooldowns(threshold=cooldown_failures, cooldown=cooldown_seconds),
        retry=RetryPolicy(backoff_base=0.01, max_retry_after=max_retry_after),
    )


def make_graph(deps: AgentDeps) -> AgentGraph:
    """The real graph over these deps, checkpointed in memory."""
    return build_graph(lambda: deps, checkpointer=InMemorySaver())
