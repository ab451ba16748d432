"""The LangServe door at `/agent`: invoke, batch, stream, stream_events, schemas, playground.

Every LangServe import of the service lives in `server.langserve`, so the door can be
replaced (LangServe is archived upstream) without touching anything else.

Threads: `configurable.thread_id` in the request's config, else the thread headers (see
`server.turns.threads`), names the thread; it is namespaced by the caller's API key before it
reaches the checkpointer. `configurable.checkpoint_id` with it runs from (or branches at) an
earlier checkpoint. Without a thread id a run is stateless, as on `/v1`. On a thread the
input's messages are reconciled with the stored thread exactly as on `/v1`
(`server.turns.kit`): a client may send only the new messages, or resend the whole conversation
(the playground does), and an edited earlier message forks the thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from langserve import add_routes
from langserve.lzstring import LZString
from pydantic import ValidationError

from graph.errors import ErrorCode
from server.errors import OpenAIHTTPError
from server.langserve.admission import DOOR, STREAMING_ROUTES, admit, lease_of, thread_lease
from server.langserve.door import RUN_KEY, AgentDoor, DoorRun
from server.langserve.threads import router as threads_router
from server.turns.request import TurnRequest
from server.turns.threads import thread_of
from server.wiring.deps import app_state_of, authenticate_browser, browser_caller_of

__all__ = ["PATH", "mount_agent_routes", "playground_link"]

PATH = "/agent"


def playground_link(thread_id: str, checkpoint_id: str) -> str:
    """The playground's URL opened on a thread at one of its checkpoints, to run from there.

    LangServe's playground takes a config in its path, `/agent/c/<config>/playground/`
    (the config as JSON, lz-string compressed for a URL, as its own "share" links do): it
    fills the config form with it and sends it with every run, so a turn started there
    runs from that checkpoint (a new branch when the checkpoint is not the latest).

    Args:
        thread_id: The thread id as the client names it (not the key-scoped one).
        checkpoint_id: The checkpoint to run from.
    """
    config = {"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}}
    compact = json.dumps(config, separators=(",", ":"))
    packed: str = LZString.compressToEncodedURIComponent(compact)  # type: ignore[no-untyped-call]
    return f"{PATH}/c/{packed}/playground/"


def _configured(configurable: dict[str, Any], key: str) -> str | None:
    value = configurable.get(key)
    return value.strip() or None if isinstance(value, str) else None


async def _per_request_config(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """Translate one request's config and headers into its turn (without its messages yet)."""
    kit = app_state_of(request).turns
    caller = browser_caller_of(request)
    await admit(request, kit, caller)  # sizes, rate limit, budget: before any message is built
    configurable = dict(config.get("configurable") or {})
    model = _configured(configurable, "model")
    if model is not None:
        kit.providers.resolve(model)  # an unknown alias is a 404 before the run starts
    thread = thread_of(caller.key_id, request.headers, configured=configurable.get("thread_id"))
    checkpoint_id = _configured(configurable, "checkpoint_id")
    if thread is None and checkpoint_id is not None:
        raise OpenAIHTTPError(
            400,
            "configurable.checkpoint_id needs a thread: set configurable.thread_id too.",
            code=ErrorCode.INVALID_REQUEST,
            param="config.configurable.checkpoint_id",
        )
    if thread is not None and checkpoint_id is not None:
        # A branch from a checkpoint that is not stored would start the thread over: 404.
        await kit.read_stored(thread, checkpoint_id, param="config.configurable.checkpoint_id")
    lease = lease_of(request) if thread is not None else None
    if lease is not None:
        await kit.lease(thread, lease)  # a busy thread: 409 before the stream starts
    turn = TurnRequest(
        door=DOOR,
        caller=caller,
        messages=(),
        thread=thread,
        options={"model": model},
        checkpoint_id=checkpoint_id,
        # The playground resends answers as it rendered them, not as they were given.
        assistant_text=False,
        # LangServe's streams have started when the run starts: the graph answers instead.
        answerable=False,
    )
    return {**config, "configurable": {RUN_KEY: DoorRun(kit, turn, lease, request)}}


class _ClientInputRoute(APIRoute):
    """A LangServe route, with what the door adds around LangServe's handlers.

    `/batch` checks each input against the graph's input schema with a bare
    `model_validate`, so a malformed input raised pydantic's `ValidationError` and became a
    500; it is the client's mistake, a 400 like the other endpoints give. The streaming
    routes get a lease on their thread's lock (`server.langserve.admission.thread_lease`).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        """The route, with the thread lease among its dependencies if it streams a run."""
        if path.endswith(STREAMING_ROUTES):
            dependencies = list(kwargs.get("dependencies") or [])
            if not any(d.dependency is thread_lease for d in dependencies):
                dependencies.append(Depends(thread_lease))
            kwargs["dependencies"] = dependencies
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, with the batch's input validation errors made a 400."""
        handler = super().get_route_handler()
        if not self.path.endswith("/batch"):
            return handler

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ValidationError as error:
                raise RequestValidationError(error.errors()) from error

        return handle


def mount_agent_routes(app: FastAPI) -> None:
    """Add the `/agent` routes (LangServe and thread inspection), behind the API keys."""
    router = APIRouter(
        prefix=PATH, dependencies=[Depends(authenticate_browser)], route_class=_ClientInputRoute
    )
    add_routes(
        router,
        AgentDoor(),
        per_req_config_modifier=_per_request_config,
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
        playground_type="default",
    )
    # LangServe adds `/token_feedback` even with the feedback endpoint off, to answer it with a
    # 400: a route that cannot work is left out, so the API document does not offer it.
    router.routes[:] = [
        route
        for route in router.routes
        if not (isinstance(route, APIRoute) and route.path.endswith("/token_feedback"))
    ]
    for route in router.routes:
        # `/agent/c/{config}/…` repeats each route with its config lz-string packed into the
        # path, for the playground's links: served, but not offered twice in the document.
        if isinstance(route, APIRoute) and route.path.startswith(f"{PATH}/c/"):
            route.include_in_schema = False
    router.include_router(threads_router)
    app.include_router(router)
