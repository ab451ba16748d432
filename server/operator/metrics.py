"""The Prometheus scrape endpoint, `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(instruments: MetricsDep) -> Response:
    """Prometheus scrape endpoint (no secrets, no user data: label values are bounded)."""
    return Response(instruments.exposition(), media_type=CONTENT_TYPE_LATEST)
