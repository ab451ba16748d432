"""`GET /info`: what the server is and which features it has (agent-chat-ui's connection check)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from server.graph_api.door import door_router

__all__ = ["router"]

router = door_router(tags=["LangGraph API: info"])


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@router.get("/info", summary="Server information")
async def info() -> dict[str, Any]:
    """The server's version and its features, as LangGraph Server reports them."""
    return {
        "version": _version("agent-service") or "0.1.0",
        "langgraph_py_version": _version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "agent-service"},
    }
