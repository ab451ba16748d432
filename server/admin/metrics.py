"""The Prometheus scrape endpoint, `/metrics` (an admin key when ADMIN_API_KEYS is set)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.wiring.deps import MetricsDep, guard_metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(guard_metrics)])
async def metrics(instruments: MetricsDep) -> Response:
    """Prometheus scrape endpoint (no secrets, no user data: label values are bounded)."""
    return Response(instruments.exposition(), media_type=CONTENT_TYPE_LATEST)
