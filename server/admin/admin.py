"""`/admin` routes for operators: response cache stats and invalidation.

With ADMIN_API_KEYS set they take only admin keys (a client key gets 403); without, the same
keys as `/v1` (on an open service they are open too, and the start logs a warning).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from server.wiring.deps import ResponseCacheDep, authenticate_operator

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(authenticate_operator)])


@router.get("/cache/stats")
async def cache_stats(cache: ResponseCacheDep) -> dict[str, Any]:
    """Hits, misses, stores and errors by layer since start, and the layers' state."""
    return cache.stats()


@router.post("/cache/clear")
async def cache_clear(cache: ResponseCacheDep) -> dict[str, Any]:
    """Drop every cached answer, on every replica (see `ResponseCache.clear`)."""
    return {"cleared": await cache.clear()}
