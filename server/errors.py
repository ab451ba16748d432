"""OpenAI-shaped errors: the exception handlers that turn failures into `{"error": {...}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph.errors import (
    AgentError,
    AllProvidersFailedError,
    ModelNotFoundError,
    ProviderStreamBrokenError,
)
from server.disconnect import ClientGone

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIHTTPError(Exception):
    """An error the routes raise on purpose, with OpenAI's fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object for a status."""
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying the OpenAI error object."""
    return JSONResponse(
        error_body(status, message, code=code, param=param), status_code=status, headers=headers
    )


def agent_error_status(exc: AgentError) -> tuple[int, dict[str, str]]:
    """HTTP status and headers of an agent error."""
    if isinstance(exc, ModelNotFoundError):
        return 404, {}
    if isinstance(exc, AllProvidersFailedError | ProviderStreamBrokenError):
        # Retrying a request whose whole provider chain failed only multiplies the load.
        return 502, {"x-should-retry": "false"}
    return 400, {}


async def _agent_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentError)
    status, headers = agent_error_status(exc)
    param = "model" if isinstance(exc, ModelNotFoundError) else None
    logger.info("request failed with %s (%d)", exc.code.value, status)
    return error_response(status, exc.message, code=exc.code.value, param=param, headers=headers)


async def _openai_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenAIHTTPError)
    return error_response(
        exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers
    )


INVALID_JSON_CODE = "invalid_json"
INVALID_JSON_MESSAGE = "We could not parse the JSON body of your request."


def _unparsable(error: Any) -> str | None:
    """The message for a body that is not JSON, or None when `error` is about something else."""
    if not isinstance(error, dict):  # LangServe raises with plain strings ("Invalid JSON body")
        return INVALID_JSON_MESSAGE
    if error.get("type") != "json_invalid":
        return None
    reason = (error.get("ctx") or {}).get("error")
    return f"{INVALID_JSON_MESSAGE} {reason}." if reason else INVALID_JSON_MESSAGE


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    for error in errors:
        unparsable = _unparsable(error)
        if unparsable is not None:
            return error_response(400, unparsable, code=INVALID_JSON_CODE)
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    message = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
        for e in errors
    )
    return error_response(400, f"Invalid request: {message}", code="invalid_request", param=param)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(
        exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "The server had an error while processing your request.")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """Nobody is listening: log it, answer with nginx's 499 for the access log."""
    logger.info("client disconnected; its run was cancelled (%s)", request.url.path)
    return Response(status_code=499)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; the last one is the boundary that turns the rest into a 500."""
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(AgentError, _agent_error)
    app.add_exception_handler(OpenAIHTTPError, _openai_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
