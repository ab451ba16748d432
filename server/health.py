"""Liveness: the process answers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: the event loop serves requests."""
    return {"status": "ok"}
