"""Turns Settings into the graph's services (providers, tools), over the given cooldowns."""

from __future__ import annotations

from functools import cache

import httpx

from nodes.deps import AgentDeps, RetryPolicy
from nodes.images import ImageStore
from nodes.providers.catalogue import ProviderCatalogue, ProviderTarget
from nodes.providers.cooldown import CooldownStore
from nodes.providers.registry import ProviderConfig
from nodes.tools import ToolConfig, build_tool_registry
from nodes.tools.knowledge import KnowledgeBase, make_knowledge_tool
from server.settings import Settings
from server.settings.provider_file import ProviderFileError
from server.stores.mcp_servers import McpServers
from server.stores.resources import cooldown_store


def provider_configs(settings: Settings) -> dict[str, ProviderConfig]:
    """Connection settings of every provider kind the settings read, by kind."""
    return settings.provider_configs()


def provider_catalogue(settings: Settings) -> ProviderCatalogue:
    """The endpoints and aliases of the settings, parsed and checked (a bad one fails at start).

    Without a provider file: AGENT_MODELS over one endpoint per kind. With one
    (AGENT_CONFIG): its endpoints beside those, and its `[models]` instead of AGENT_MODELS.

    Raises:
        ProviderFileError: The provider file is wrong (the message names file, line, field).
        ValueError: An alias or its chain is wrong.
    """
    configs = provider_configs(settings)
    loaded = settings.provider_file()
    if loaded is None:
        aliases = {
            alias: [ProviderTarget.parse(spec) for spec in chain]
            for alias, chain in settings.agent_models.items()
        }
        return ProviderCatalogue(
            aliases=aliases,
            default_alias=settings.default_alias,
            configs=configs,
            summary_alias=settings.summary_model,
        )
    configs.update(loaded.endpoints)
    aliases = loaded.models or {
        alias: [ProviderTarget.parse(spec, configs) for spec in chain]
        for alias, chain in settings.agent_models.items()
    }
    default = settings.default_model or loaded.default_model or next(iter(aliases))
    try:
        return ProviderCatalogue(
            aliases=aliases,
            default_alias=default,
            configs=configs,
            summary_alias=settings.summary_model or loaded.summary_model,
        )
    except ValueError as exc:
        raise ProviderFileError(f"{settings.agent_config}: {exc}") from exc


def build_agent_deps(
    settings: Settings,
    *,
    cooldowns: CooldownStore,
    http_client: httpx.AsyncClient | None = None,
    images: ImageStore | None = None,
    mcp: McpServers | None = None,
    knowledge: KnowledgeBase | None = None,
) -> AgentDeps:
    """Every service the graph's nodes use, built from settings, over the given cooldowns.

    `cooldowns` comes from `server.stores.resources.cooldown_store`, the app's shared store;
    `images` from `server.stores.images.open_image_store` (None: threads store no images);
    `mcp` from `server.stores.mcp_servers.open_mcp_servers`, whose tools join the registry (now and
    whenever a server comes up); `knowledge` from `server.knowledge.opening.open_knowledge`
    (None: `knowledge_search` is not registered).
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
    if knowledge is not None:
        tools.register(make_knowledge_tool(knowledge, default_top_k=settings.knowledge_top_k))
    if mcp is not None:
        mcp.bind(tools)
    return AgentDeps(
        providers=provider_catalogue(settings),
        tools=tools,
        knowledge=knowledge,
        cooldowns=cooldowns,
        images=images,
        retry=RetryPolicy(
            backoff_base=settings.provider_backoff_base,
            max_retry_after=settings.provider_max_retry_wait,
        ),
    )


@cache
def default_agent_deps() -> AgentDeps:
    """Services for the module-level graph (`langgraph dev`), built once on first use."""
    settings = Settings()
    return build_agent_deps(settings, cooldowns=cooldown_store(settings, redis=None))
