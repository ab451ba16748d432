"""OpenAI-shaped errors: the `ErrorResponse` wire model, and the handlers that send it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph.errors import (
    AgentError,
    AllProvidersFailedError,
    ErrorCode,
    ModelNotFoundError,
    ProviderRejectedError,
    ProviderStreamBrokenError,
)
from server.refusals import (
    STORE_RETRY_AFTER,
    STORE_UNAVAILABLE_MESSAGE,
    ClientGone,
    Refused,
)
from server.store_errors import store_unavailable

logger = logging.getLogger(__name__)

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "conflict_error",
    "rate_limit_error",
    "insufficient_quota",
    "api_error",
]
"""OpenAI's `error.type`: the class of the status (`api_error` for every 5xx), except for
the codes whose type OpenAI names after them (`_CODE_TYPES`)."""

_TYPES: dict[int, ErrorType] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}

_CODE_TYPES: dict[ErrorCode, ErrorType] = {ErrorCode.INSUFFICIENT_QUOTA: "insufficient_quota"}
"""A 429 for a spent quota is `insufficient_quota`, not `rate_limit_error`, as OpenAI sends it
(clients tell "wait a moment" from "nothing more this month" by it)."""


class ErrorInfo(BaseModel):
    """The `error` object: every field is always present, `param` and `code` may be null."""

    message: str
    type: ErrorType
    param: str | None
    """The request field the error is about (`messages[0].content`), when there is one."""
    code: ErrorCode | None
    """Stable machine-readable code; null for errors that have none (404 route, 500)."""


class ErrorResponse(BaseModel):
    """`{"error": {...}}`: the body of every error of every door, in OpenAI's shape."""

    error: ErrorInfo


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented as an `ErrorResponse` body."""
    return {status: {"model": ErrorResponse} for status in statuses}


class OpenAIHTTPError(Exception):
    """An error the routes raise on purpose, with OpenAI's fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: ErrorCode | None = None,
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
    status: int, message: str, *, code: ErrorCode | None = None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object for a status, as the JSON-ready dict of an `ErrorResponse`."""
    kind = _CODE_TYPES.get(code) if code is not None else None
    kind = kind or _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    info = ErrorInfo(message=message, type=kind, param=param, code=code)
    return ErrorResponse(error=info).model_dump(mode="json")


def error_response(
    status: int,
    message: str,
    *,
    code: ErrorCode | None = None,
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
    if isinstance(exc, ProviderRejectedError):
        # The provider refused the request itself: the same request fails the same way again.
        return exc.status, {"x-should-retry": "false"}
    if isinstance(exc, AllProvidersFailedError | ProviderStreamBrokenError):
        # Retrying a request whose whole provider chain failed only multiplies the load.
        return 502, {"x-should-retry": "false"}
    return 400, {}


_REFUSAL_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNSUPPORTED_VALUE: 400,
    ErrorCode.TOO_MANY_MESSAGES: 400,
    ErrorCode.TOO_MANY_INPUTS: 400,
    ErrorCode.INVALID_THREAD_ID: 400,
    ErrorCode.MISSING_API_KEY: 401,
    ErrorCode.INVALID_API_KEY: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.MODEL_NOT_FOUND: 404,
    ErrorCode.THREAD_NOT_FOUND: 404,
    ErrorCode.CHECKPOINT_NOT_FOUND: 404,
    ErrorCode.THREAD_BUSY: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMIT_EXCEEDED: 429,
    ErrorCode.INSUFFICIENT_QUOTA: 429,
    ErrorCode.CHECKPOINTER_UNAVAILABLE: 503,
}
"""The status of each refusal of the turn kit (`server.refusals.Refused`)."""


def status_of(refused: Refused) -> int:
    """The HTTP status of a refusal: one answer for every door."""
    return _REFUSAL_STATUS.get(refused.code, 400)


def http_error(refused: Refused) -> OpenAIHTTPError:
    """A refusal as the HTTP error every OpenAI-shaped door sends."""
    return OpenAIHTTPError(
        status_of(refused),
        refused.message,
        code=refused.code,
        param=refused.param,
        headers=refused.headers,
    )


SERVER_ERROR_MESSAGE = "The server had an error while processing your request."


def stream_failure(exc: Exception) -> tuple[int, str, ErrorCode | None]:
    """How a failure after a stream's first byte is reported in-band, on every door.

    Called from a stream's `except Exception` boundary: a refusal, an agent error or an
    unreachable store keeps its status, message and code; anything else is logged and
    reported as a 500.
    """
    if isinstance(exc, Refused):
        return status_of(exc), exc.message, exc.code
    if isinstance(exc, AgentError):
        status, _ = agent_error_status(exc)
        return status, exc.message, exc.code
    if isinstance(exc, psycopg.OperationalError) and store_unavailable(exc):
        return 503, STORE_UNAVAILABLE_MESSAGE, ErrorCode.CHECKPOINTER_UNAVAILABLE
    logger.error("unhandled error while streaming", exc_info=exc)
    return 500, SERVER_ERROR_MESSAGE, None


async def _turn_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)  # registered for that class only  # nosec B101
    return await _openai_error(request, http_error(exc))


async def _agent_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentError)  # registered for that class only  # nosec B101
    status, headers = agent_error_status(exc)
    param = "model" if isinstance(exc, ModelNotFoundError) else None
    logger.info("request failed with %s (%d)", exc.code.value, status)
    return error_response(status, exc.message, code=exc.code, param=param, headers=headers)


async def _openai_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenAIHTTPError)  # registered for that class only  # nosec B101
    return error_response(
        exc.status, exc.message, code=exc.code, param=exc.param, headers=exc.headers
    )


INVALID_JSON_MESSAGE = "We could not parse the JSON body of your request."


def _is_tag(part: str, node: dict[str, Any], following: str | int | None) -> bool:
    """Whether `part`, at `node` in the body, is a union member's tag rather than a field.

    A discriminated union's tag is the discriminator's value (`user`, `image_url`, …), and
    a field always follows it. OpenAI names a part's payload after its type (`{"type":
    "image_url", "image_url": {...}}`), so a tag may also be a field's name: then that
    field's name follows it.
    """
    if following is None or part not in (node.get("type"), node.get("role")):
        return False
    return part not in node or following == part


def _field_path(loc: Sequence[str | int], body: Any) -> list[str | int]:
    """The fields and indexes of `loc` without the union members pydantic names in it."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not isinstance(body, dict | list):
        return parts  # nothing to walk (LangServe validates a model): keep the loc as it is
    path: list[str | int] = []
    node: Any = body
    for index, part in enumerate(parts):
        following = parts[index + 1] if index + 1 < len(parts) else None
        if isinstance(part, int) and isinstance(node, list):
            path.append(part)
            node = node[part] if -len(node) <= part < len(node) else None
        elif isinstance(part, str) and isinstance(node, dict):
            if _is_tag(part, node, following):
                continue
            if part in node:
                path.append(part)
                node = node[part]
            elif following is None:
                path.append(part)  # a missing field
        elif isinstance(part, int):
            path.append(part)
        # Else a str where the body holds no object: a union member (`str`, `list[…]`).
    return path


def error_param(error: Mapping[str, Any], body: Any) -> str | None:
    """The request field a validation error is about, as OpenAI writes it.

    `messages[0].content[1].type`: pydantic's `loc` also names the union members it tried
    (`user`, `list[...]`, `image_url`); walking the body along it tells those from fields (a
    field is a key of the body there, an index is in range; what is neither is a member's
    name, except at the end: a missing field). An error at a union, whose tag matched no
    member, names the field that holds the tag.
    """
    path = _field_path(tuple(error.get("loc", ())), body)
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        if discriminator.isidentifier():
            path.append(discriminator)
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.lstrip(".") or None


def _unparsable(error: Any) -> str | None:
    """The message for a body that is not JSON, or None when `error` is about something else."""
    if not isinstance(error, dict):  # LangServe raises with plain strings ("Invalid JSON body")
        return INVALID_JSON_MESSAGE
    if error.get("type") != "json_invalid":
        return None
    reason = (error.get("ctx") or {}).get("error")
    return f"{INVALID_JSON_MESSAGE} {reason}." if reason else INVALID_JSON_MESSAGE


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # registered for that class only  # nosec B101
    errors = exc.errors()
    for error in errors:
        unparsable = _unparsable(error)
        if unparsable is not None:
            return error_response(400, unparsable, code=ErrorCode.INVALID_JSON)
    params = [error_param(error, exc.body) for error in errors]
    message = "; ".join(
        f"{param or 'body'}: {error.get('msg')}"
        for param, error in zip(params, errors, strict=True)
    )
    param = params[0] if params else None
    return error_response(
        400, f"Invalid request: {message}", code=ErrorCode.INVALID_REQUEST, param=param
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # registered for that class only  # nosec B101
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 422:
        # LangServe refuses some input itself with a 422 (`/batch`: as many configs as
        # inputs); every invalid request is a 400 here, as the API document says.
        return error_response(400, str(exc.detail), code=ErrorCode.INVALID_REQUEST, headers=headers)
    return error_response(exc.status_code, str(exc.detail), headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "The server had an error while processing your request.")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL down or failing over: a 503 to retry, not a 500; anything else is a bug."""
    assert isinstance(exc, psycopg.OperationalError)  # registered for that class only  # nosec B101
    if not store_unavailable(exc):
        return await _unexpected(request, exc)
    logger.warning("conversation store unavailable on %s: %s", request.url.path, type(exc).__name__)
    return error_response(
        503,
        STORE_UNAVAILABLE_MESSAGE,
        code=ErrorCode.CHECKPOINTER_UNAVAILABLE,
        headers={"retry-after": STORE_RETRY_AFTER},
    )


async def _client_gone(request: Request, exc: Exception) -> Response:
    """Nobody is listening: log it, answer with nginx's 499 for the access log."""
    logger.info("client disconnected; its run was cancelled (%s)", request.url.path)
    return Response(status_code=499)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; the last one is the boundary that turns the rest into a 500."""
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(AgentError, _agent_error)
    app.add_exception_handler(OpenAIHTTPError, _openai_error)
    app.add_exception_handler(Refused, _turn_refused)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
