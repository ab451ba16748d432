"""Opens every resource of the app at start and closes it at shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from graph.builder import build_graph
from nodes.observe import TurnObservers
from server.auth import KeyRing
from server.knowledge.opening import open_knowledge
from server.knowledge.service import Knowledge
from server.settings import Settings
from server.stores.assistant_sql import open_assistant_store
from server.stores.budgets import BudgetPolicy
from server.stores.checkpointer import connection_pool, open_checkpointer
from server.stores.graph_thread_sql import open_thread_records
from server.stores.images import open_image_store
from server.stores.locks import ThreadLocks
from server.stores.mcp_servers import open_mcp_servers
from server.stores.memory_store import MemoryIndex, open_memory_store
from server.stores.resources import open_operations
from server.stores.response_store import open_response_store
from server.stores.usage_ledger import open_usage_ledger
from server.telemetry.metrics import Metrics
from server.telemetry.node_observer import TurnMetrics
from server.telemetry.saver import InstrumentedSaver
from server.telemetry.usage_observer import UsageObserver
from server.turns.kit import TurnKit
from server.turns.registry import LocalRunRegistry
from server.wiring.services import build_agent_deps
from server.wiring.state import AppState

logger = logging.getLogger(__name__)


@asynccontextmanager
async def search_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient | None]:
    """The pooled HTTP client of web search, or None when SEARXNG_URL is unset.

    Unset, the tool answers that search is not configured and never sends a request; a client
    would only cost the start its TLS context (the CA bundle, about 50 ms) and httpcore.
    """
    if not settings.searxng_url:
        yield None
        return
    async with httpx.AsyncClient(timeout=settings.searxng_timeout) as client:
        yield client


def memory_index(knowledge: Knowledge | None) -> MemoryIndex | None:
    """The memory store's semantic search: the knowledge base's embedding, when it has one."""
    if knowledge is None:
        return None
    return MemoryIndex(knowledge.embeddings, knowledge.spec.dimension)


def warn_about_operator_routes(keys: KeyRing) -> None:
    """Say at start who can reach `/admin` and `/metrics` when no admin key guards them."""
    if keys.has_admin_keys:
        logger.info(
            "admin keys required on /admin and /metrics: %d key(s)", len(keys.admin_digests)
        )
    elif keys.open:
        logger.warning(
            "no ADMIN_API_KEYS: /admin (cache, usage) is OPEN to anyone, like /v1; /metrics is open"
        )
    else:
        logger.warning(
            "no ADMIN_API_KEYS: /admin (cache, usage) is reachable with any client key; "
            "/metrics is open"
        )


def make_lifespan(
    settings: Settings,
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]:
    """The app's lifespan over the given settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with (
            search_client(settings) as http,
            open_checkpointer(settings) as saver,
            open_image_store(settings, saver) as images,
            open_usage_ledger(settings, saver) as usage,
            open_response_store(settings, saver) as responses,
            open_thread_records(settings, saver) as graph_threads,
            open_operations(settings) as ops,
            open_mcp_servers(settings) as mcp,
            open_knowledge(settings, saver) as knowledge,
            open_assistant_store(settings, saver) as assistants,
            open_memory_store(settings, saver, memory_index(knowledge)) as memory,
        ):
            deps = build_agent_deps(
                settings,
                http_client=http,
                cooldowns=ops.cooldowns,
                images=images,
                mcp=mcp,
                knowledge=knowledge,
            )
            metrics = Metrics(version=app.version)
            pool = connection_pool(saver)
            if pool is not None:
                metrics.watch_pool(pool.get_stats)
            # Registered without MCP servers too: the families exist, with no series.
            servers = mcp.servers if mcp is not None else {}
            metrics.watch_mcp(lambda: {n: s.describe() for n, s in servers.items()})
            ops.cache.add_observer(metrics)
            usage.add_error_counter(metrics.usage_store_error)
            graph = build_graph(
                lambda: deps, checkpointer=InstrumentedSaver(saver, metrics), store=memory
            )
            stateless = build_graph(lambda: deps, store=memory)
            # Both graphs' nodes report to the same metrics (every door runs one of them).
            keys = KeyRing.from_settings(settings)
            deps.observer = TurnObservers(
                TurnMetrics(metrics, nodes=graph.nodes, tools=deps.tools),
                UsageObserver(metrics, usage, deps.providers, keys=keys.key_ids()),
            )
            logger.info(
                "agent service ready: models %s, tools %s",
                ", ".join(deps.providers.alias_names()),
                ", ".join(deps.tools.names()),
            )
            if keys.open:
                logger.warning(
                    "no API keys configured (API_KEYS / API_KEY_HASHES): the service is OPEN "
                    "to anyone who can reach it"
                )
            else:
                logger.info("API keys required: %d key(s) accepted", len(keys.digests))
            warn_about_operator_routes(keys)
            budgets = BudgetPolicy.from_settings(settings)
            if budgets.enabled:
                logger.info("monthly budgets: %s", budgets.describe())
            locks = ThreadLocks(ops.redis)
            turns = TurnKit(
                settings=settings,
                graph=graph,
                stateless_graph=stateless,
                checkpointer=saver,
                locks=locks,
                limiter=ops.limiter,
                providers=deps.providers,
                count=metrics.count_turn,
                budgets=budgets,
                usage=usage,
                images=deps.images,
                latest_checkpoint=responses.latest_checkpoint if responses is not None else None,
            )
            state = AppState(
                settings=settings,
                deps=deps,
                checkpointer=saver,
                graph=graph,
                stateless_graph=stateless,
                keys=keys,
                ops=ops,
                locks=locks,
                turns=turns,
                metrics=metrics,
                usage=usage,
                budgets=budgets,
                mcp=mcp,
                responses=responses,
                graph_threads=graph_threads,
                knowledge=knowledge,
                assistants=assistants,
                memory=memory,
                runs=LocalRunRegistry(),
            )
            try:
                yield {"agent": state}
            finally:
                await state.runs.aclose()
                await deps.providers.aclose()

    return lifespan
