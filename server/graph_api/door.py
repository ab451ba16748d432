"""The door's frame: its routes at the root, its error shape, its body rules.

LangGraph Server serves its API at the root of its address, so a client configured for it
needs only the base URL: `/info`, `/assistants/...`, `/threads/...`, `/runs/...`,
`/store/...` (`PREFIXES`).

Errors are LangGraph's shape, `{"detail": ...}`, which the SDK shows as they come:

* a refusal of the turn kit (`server.refusals.Refused`) keeps the status every door gives it
  (404 for an unknown thread, 409 for a busy one, 429, 503), with `detail` its message and
  `code` its stable code;
* a body the route cannot validate is a 422 whose `detail` lists the fields at fault.

The key comes as `x-api-key` (the SDK's header) or as `Authorization: Bearer` (see
`server.wiring.deps`). LangGraph Studio sends its JSON as `text/plain`: on this door's paths
it is read as JSON (`server.edge.sanitize`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from graph.errors import ErrorCode
from server.errors import status_of
from server.refusals import Refused
from server.wiring.deps import authenticate

__all__ = [
    "DOOR",
    "PREFIXES",
    "ErrorDetail",
    "GraphApiRoute",
    "detail_response",
    "door_router",
    "is_door_path",
    "not_found",
]

DOOR = "langgraph"
"""The door's name: the `door` label of its turns' metrics."""

PREFIXES = ("/info", "/assistants", "/threads", "/runs", "/store")
"""The paths this door serves, at the root as LangGraph Server serves them."""


def is_door_path(path: str) -> bool:
    """Whether `path` is one of this door's (the body rules of `server.edge.sanitize`)."""
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in PREFIXES)


class ErrorDetail(BaseModel):
    """The body of every error of this door."""

    detail: Any
    """What went wrong: a sentence, or (422) the fields at fault."""
    code: str | None = None
    """The stable machine-readable code, when there is one (`thread_not_found`, ...)."""


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorDetail} for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}
"""`responses=` of every route: each error status, documented in this door's shape."""


def detail_response(
    status: int, detail: Any, *, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error in this door's shape."""
    body = ErrorDetail(detail=detail, code=code).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=headers)


def not_found(what: str, ident: str) -> Refused:
    """The 404 for an unknown assistant, run, item or thread (`what` names which)."""
    code = ErrorCode.THREAD_NOT_FOUND if what == "thread" else ErrorCode.NOT_FOUND
    return Refused(code, f"{what.capitalize()} {ident!r} not found.")


class GraphApiRoute(APIRoute):
    """A route whose refusals and validation errors are answered in this door's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, with this door's error shape around it."""
        handler = super().get_route_handler()

        async def shaped(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused as refused:
                return detail_response(
                    status_of(refused), refused.message, code=refused.code, headers=refused.headers
                )
            except RequestValidationError as invalid:
                return detail_response(422, _jsonable_errors(invalid.errors()))

        return shaped


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors without the parts that are not JSON (its `ctx` may hold exceptions)."""
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in errors
    ]


def door_router(*, tags: list[str | Enum]) -> APIRouter:
    """A router of this door: its route class, its errors documented, the key checked."""
    return APIRouter(
        route_class=GraphApiRoute,
        dependencies=[Depends(authenticate)],
        responses=ERRORS,
        tags=tags,
    )


def mount_graph_api(app: FastAPI, routers: list[APIRouter]) -> None:
    """Serve the door's routers at the root of `app`."""
    for router in routers:
        app.include_router(router)
