"""Assembles the FastAPI app: routers, error handlers, lifespan. Nothing else happens here."""

from __future__ import annotations

from fastapi import FastAPI

from server import health, openai_routes
from server.errors import install_error_handlers
from server.lifespan import make_lifespan
from server.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; run with `uvicorn server.app:create_app --factory` or `python -m server`."""
    settings = settings or Settings()
    app = FastAPI(
        title="agent-service",
        summary="A stateful, tool-using LangGraph agent behind an OpenAI-compatible API.",
        version="0.1.0",
        lifespan=make_lifespan(settings),
    )
    install_error_handlers(app)
    app.include_router(openai_routes.router)
    app.include_router(health.router)
    return app
