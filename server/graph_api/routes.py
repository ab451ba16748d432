"""Every router of the LangGraph API door, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter

from server.graph_api import (
    assistant_graph,
    assistant_routes,
    info,
    run_routes,
    runs,
    store_routes,
    thread_state,
    threads,
)

__all__ = ["graph_api_routers"]


def graph_api_routers() -> list[APIRouter]:
    """The door's routers (`server.graph_api.door.mount_graph_api` serves them at the root)."""
    return [
        info.router,
        assistant_routes.router,
        assistant_graph.router,
        threads.router,
        thread_state.router,
        runs.router,
        run_routes.router,
        store_routes.router,
    ]
