"""Assembles the FastAPI app: routers, error handlers, lifespan. Nothing else happens here."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from server.admin import admin, health, knowledge, metrics, usage_report
from server.chat import routes as openai_routes
from server.edge.body_limit import BodyLimitMiddleware
from server.edge.page_headers import PageHeadersMiddleware
from server.edge.sanitize import SanitizeMiddleware
from server.errors import install_error_handlers
from server.graph_api.door import is_door_path, mount_graph_api
from server.graph_api.routes import graph_api_routers
from server.inspector.routes import FORM_PATHS as INSPECTOR_FORMS
from server.inspector.routes import inspector_router
from server.langserve.routes import mount_agent_routes, playground_link
from server.mcp_server.door import PATH as MCP_PATH
from server.mcp_server.door import mount_mcp
from server.openapi import install_openapi
from server.responses import routes as responses_routes
from server.settings import Settings
from server.stores.ratelimit import RateLimitHeaders
from server.telemetry.middleware import ObservabilityMiddleware
from server.turns.threads import header_thread_id
from server.wiring.deps import door_caller
from server.wiring.lifespan import make_lifespan


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
    install_openapi(app)
    app.include_router(openai_routes.router)
    app.include_router(responses_routes.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(usage_report.router)
    app.include_router(knowledge.router)
    app.include_router(metrics.router)
    app.include_router(inspector_router(playground_link))
    mount_agent_routes(app)
    mount_mcp(app)
    mount_graph_api(app, graph_api_routers())
    app.add_middleware(RateLimitHeaders)  # x-ratelimit-* on allowed responses
    # Inside the body limit (it reads no more than that): refuses cross-site writes to an open
    # door and bodies that are not JSON, checks the key before reading a body, then refuses
    # or repairs what no door could read.
    app.add_middleware(
        SanitizeMiddleware,
        authenticate=door_caller,
        cors_origins=settings.cors_origins,
        form_paths=INSPECTOR_FORMS,
        rpc_paths=(MCP_PATH, f"{MCP_PATH}/"),
        detail_paths=is_door_path,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "x-thread-id",
                "content-location",  # the LangGraph API's run of a stream (its stop button)
                "x-pagination-total",  # the LangGraph API's searches
                "x-pagination-next",
                "x-request-id",
                "x-cache",
                "retry-after",
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        )
    app.add_middleware(PageHeadersMiddleware)  # nosniff everywhere; CSP on the HTML pages
    app.add_middleware(
        ObservabilityMiddleware, thread_id_of=header_thread_id
    )  # pure ASGI: request id, metrics, access log
    return app
