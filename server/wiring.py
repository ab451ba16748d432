"""Turns Settings into the graph's services (providers, tools, cooldowns)."""

from __future__ import annotations

from functools import cache

import httpx

from nodes.deps import AgentDeps, RetryPolicy
from nodes.providers.catalogue import (
    ProviderCatalogue,
    ProviderConfig,
    ProviderKind,
    ProviderTarget,
)
from nodes.providers.cooldown import CooldownStore, InProcessCooldowns
from nodes.tools import ToolConfig, build_tool_registry
from server.settings import Settings


def provider_configs(settings: Settings) -> dict[ProviderKind, ProviderConfig]:
    """Connection settings of every provider kind."""
    keys = {
        ProviderKind.OPENAI: (settings.openai_api_key, settings.openai_base_url),
        ProviderKind.OPENROUTER: (settings.openrouter_api_key, settings.openrouter_base_url),
        ProviderKind.TOGETHER: (settings.together_api_key, settings.together_base_url),
        ProviderKind.OPENAI_COMPATIBLE: (
            settings.openai_compatible_api_key,
            settings.openai_compatible_base_url,
        ),
        ProviderKind.ANTHROPIC: (settings.anthropic_api_key, settings.anthropic_base_url),
        ProviderKind.OLLAMA: (None, settings.ollama_base_url),
        ProviderKind.OFFLINE: (None, None),
    }
    return {
        kind: ProviderConfig(
            kind=kind,
            api_key=key,
            base_url=url,
            timeout=settings.provider_timeouts.get(kind.value, settings.provider_timeout),
            max_retries=settings.provider_max_retries,
        )
        for kind, (key, url) in keys.items()
    }


def provider_catalogue(settings: Settings) -> ProviderCatalogue:
    """The aliases of AGENT_MODELS, parsed and checked (a bad entry fails at start)."""
    aliases = {
        alias: [ProviderTarget.parse(spec) for spec in chain]
        for alias, chain in settings.agent_models.items()
    }
    return ProviderCatalogue(
        aliases=aliases, default_alias=settings.default_alias, configs=provider_configs(settings)
    )


def build_agent_deps(
    settings: Settings,
    *,
    http_client: httpx.AsyncClient | None = None,
    cooldowns: CooldownStore | None = None,
) -> AgentDeps:
    """Every service the graph's nodes use, built from settings.

    `cooldowns` is the shared (Redis) store when the app has one; in-process otherwise.
    """
    tools = build_tool_registry(
        ToolConfig(
            searxng_url=settings.searxng_url,
            searxng_timeout=settings.searxng_timeout,
            searxng_top_k=settings.searxng_top_k,
            load_plugins=settings.load_plugin_tools,
        ),
        http_client=http_client,
    )
    return AgentDeps(
        providers=provider_catalogue(settings),
        tools=tools,
        cooldowns=cooldowns
        or InProcessCooldowns(
            threshold=settings.provider_cooldown_failures,
            cooldown=settings.provider_cooldown_seconds,
        ),
        retry=RetryPolicy(
            backoff_base=settings.provider_backoff_base,
            max_retry_after=settings.provider_max_retry_wait,
        ),
    )


@cache
def default_agent_deps() -> AgentDeps:
    """Services for the module-level graph (`langgraph dev`), built once on first use."""
    return build_agent_deps(Settings())
