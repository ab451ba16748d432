"""The OpenAPI document made true: what the middleware and the error handlers really answer.

FastAPI documents each route from its own declarations, and does not see what happens around
them: every validation error is a 400 in OpenAI's shape here (`server.errors`), never the 422
FastAPI lists; the body limit, the sanitiser and the content-type and cross-site checks answer
413, 400, 415 and 403 before a route runs; LangServe's streaming routes answer with an event
stream, which its declarations call JSON. Schemathesis (`make fuzz`, and a bounded run in
`make test`) holds the served document to what the service does; this module is where the
document learns what the routes cannot say of themselves.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from server.errors import ErrorResponse

__all__ = ["install_openapi"]

_ERROR_REF: Final = "#/components/schemas/ErrorResponse"
_BODY_METHODS: Final = frozenset({"post", "put", "patch"})

_AROUND_EVERY_BODY: Final[dict[str, str]] = {
    "400": "The body is not JSON, not UTF-8, nests too deeply, or fails validation.",
    "403": "A cross-site write to a service without API keys (`Sec-Fetch-Site: cross-site`).",
    "413": "The body is larger than `MAX_REQUEST_BYTES`.",
    "415": "The body is not JSON (`Content-Type` is not `application/json`).",
}
"""What the middleware answers, before any route runs, to a request that has a body."""

_AROUND_EVERY_ROUTE: Final[dict[str, str]] = {
    "400": "A parameter fails validation.",
    "500": "A bug: the server logged it with the request id.",
}

_RUNS: Final[dict[str, str]] = {
    "401": "No valid API key.",
    "404": "An unknown model alias, thread or checkpoint.",
    "409": "The thread is busy with another turn.",
    "429": "The rate limit or a budget is spent (`Retry-After` says when to come back).",
}
"""What a route that runs the agent may answer besides its result (the LangServe door's routes
declare none of these)."""

_RUN_ROUTES: Final = ("/invoke", "/batch", "/stream", "/stream_log", "/stream_events")

_EVENT_STREAM: Final = ("/stream", "/stream_log", "/stream_events")
"""LangServe's streaming routes: Server-Sent Events, which LangServe declares as JSON."""


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
    }


def _true_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "HTTPValidationError" in str(responses.get("422", "")):
        del responses["422"]  # FastAPI's validation error: a 400 here (`server.errors`)
    around = dict(_AROUND_EVERY_ROUTE)
    if method in _BODY_METHODS:
        around.update(_AROUND_EVERY_BODY)
    for status, description in around.items():
        responses.setdefault(status, _error(description))
    if method == "post" and path.endswith(_RUN_ROUTES):
        for status, description in _RUNS.items():
            responses.setdefault(status, _error(description))
    if method == "post" and path.endswith(_EVENT_STREAM):
        ok = responses.setdefault("200", {"description": "Server-Sent Events."})
        ok["content"] = {"text/event-stream": {}}  # events of LangServe's own shapes


def _true_document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorResponse" not in schemas:
        schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas["ErrorResponse"] = schema
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict):
                _true_operation(path, method, operation)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the true document at `/openapi.json` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _true_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
