"""Liveness (`/health`: the process answers) and readiness (`/ready`: it can do its work).

`/ready` is 503 when this replica should get no traffic: it is draining for shutdown, or its
checkpointer does not answer. A Redis outage is not a reason: the service serves without it
(in-process cache, cooldowns and rate limits), so `/ready` stays 200 and lists those degraded
modes instead. Nor are cooling providers: with shared cooldowns every replica would leave the
load balancer at once, and the service still serves, since a chain whose every provider is
cooling down tries the one whose cooldown ends first (half-open). `/ready` names that target
per model alias (`checks.providers.half_open`) and lists the degraded mode. Nor are MCP
servers that are down (`checks.mcp_servers`: each one's state and tool count): the agent
answers without their tools while they reconnect, in the degraded mode `mcp-servers-down`.
Nor is a knowledge base that could not be opened (`checks.knowledge`; the reason is in the
log): the agent answers without `knowledge_search`, in the mode `knowledge-unavailable`.

`/ready` is for probes and load balancers, which send no key: it shows states only (the status,
the degraded modes, each check's `ok` and whether it is configured). The details (the knowledge
store's path, each MCP server's state and last error, which providers cool down) are at
`/admin/ready`, behind the admin key, with the same status code; URLs in them are redacted.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import psycopg
import psycopg_pool
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from langchain_core.runnables import RunnableConfig

from server.stores.drain import drain_of
from server.wiring.deps import AppStateDep, authenticate_operator
from server.wiring.state import AppState

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0
_PROBE: RunnableConfig = {"configurable": {"thread_id": "__ready_probe__", "checkpoint_ns": ""}}

CACHE_IN_PROCESS = "cache-in-process-only"
COOLDOWNS_IN_PROCESS = "cooldowns-in-process"
RATE_LIMITS_IN_PROCESS = "rate-limits-in-process"
ALL_PROVIDERS_COOLING = "all-providers-cooling"
PROVIDERS_HALF_OPEN = "providers-half-open"
DRAINING = "draining"
MCP_SERVERS_DOWN = "mcp-servers-down"
KNOWLEDGE_UNAVAILABLE = "knowledge-unavailable"


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: the event loop serves requests."""
    return {"status": "ok"}


async def _checkpointer(state: AppState) -> dict[str, Any]:
    """A cheap indexed read of a thread that does not exist."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await state.checkpointer.aget_tuple(_PROBE)
    except (TimeoutError, OSError, psycopg.Error, psycopg_pool.PoolTimeout, sqlite3.Error) as err:
        logger.warning("readiness: checkpointer check failed: %s", type(err).__name__)
        return {"ok": False, "error": type(err).__name__}
    return {"ok": True}


async def _redis(state: AppState) -> dict[str, Any]:
    redis = state.ops.redis
    if redis is None:
        return {"ok": True, "configured": False}
    return {"ok": await redis.ping(), "configured": True}


async def _providers(state: AppState) -> dict[str, Any]:
    aliases = state.deps.providers.aliases
    targets = sorted({t.id for chain in aliases.values() for t in chain})
    left = {t: await state.deps.cooldowns.cooldown_left(t) for t in targets}
    cooling = [t for t in targets if left[t] > 0.0]
    # Per alias whose whole chain cools down: the target its next request tries.
    half_open = {
        alias: min((t.id for t in chain), key=left.__getitem__)
        for alias, chain in aliases.items()
        if chain and all(left[t.id] > 0.0 for t in chain)
    }
    return {
        "ok": len(cooling) < len(targets),
        "cooling": cooling,
        "half_open": half_open,
    }


def _mcp_servers(state: AppState) -> dict[str, Any]:
    if state.mcp is None:
        return {"ok": True, "configured": False}
    return state.mcp.status()


def _knowledge(state: AppState) -> dict[str, Any]:
    if not state.settings.knowledge_enabled:
        return {"ok": True, "enabled": False}
    if state.knowledge is None:
        return {"ok": False, "enabled": True}
    return {"ok": True, "enabled": True, **state.knowledge.describe()}


def states_only(body: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see of the readiness: each check's yes/no facts, no detail."""
    checks = {
        name: {key: value for key, value in check.items() if isinstance(value, bool)}
        for name, check in body["checks"].items()
    }
    return {**body, "checks": checks}


@router.get("/ready", response_model=None)
async def ready(request: Request, state: AppStateDep) -> JSONResponse:
    """200 when this replica can serve (perhaps degraded), 503 when it should get no traffic.

    States only: no key is needed (probes send none), so no detail is shown.
    """
    body, status = await readiness(request, state)
    return JSONResponse(states_only(body), status_code=status)


@router.get("/admin/ready", response_model=None, dependencies=[Depends(authenticate_operator)])
async def ready_in_detail(request: Request, state: AppStateDep) -> JSONResponse:
    """`/ready` with each check's details, for operators (an admin key when ADMIN_API_KEYS)."""
    body, status = await readiness(request, state)
    return JSONResponse(body, status_code=status)


async def readiness(request: Request, state: AppState) -> tuple[dict[str, Any], int]:
    """Every check in detail, and the status code (503: this replica should get no traffic)."""
    draining = drain_of(request.app).draining
    checks = {
        "checkpointer": await _checkpointer(state),
        "redis": await _redis(state),
        "providers": await _providers(state),
        "mcp_servers": _mcp_servers(state),
        "knowledge": _knowledge(state),
    }
    degraded: list[str] = []
    if not checks["redis"]["ok"]:
        degraded += [CACHE_IN_PROCESS, COOLDOWNS_IN_PROCESS, RATE_LIMITS_IN_PROCESS]
    if not checks["providers"]["ok"]:
        degraded.append(ALL_PROVIDERS_COOLING)
    if checks["providers"]["half_open"]:
        degraded.append(PROVIDERS_HALF_OPEN)
    if not checks["mcp_servers"]["ok"]:
        degraded.append(MCP_SERVERS_DOWN)
    if not checks["knowledge"]["ok"]:
        degraded.append(KNOWLEDGE_UNAVAILABLE)
    if draining:
        degraded.append(DRAINING)
    unready = draining or not checks["checkpointer"]["ok"]
    status = "unready" if unready else "degraded" if degraded else "ready"
    body = {"status": status, "draining": draining, "checks": checks, "degraded": degraded}
    return body, 503 if unready else 200
