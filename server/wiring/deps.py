"""FastAPI dependencies: the only reader of the app's state, and every alias routes use.

Route signatures say what they use (`state: AppStateDep`, `caller: CallerDep`). Dependencies
are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graph.errors import ErrorCode
from server.auth import Caller
from server.edge.request_gate import route_path
from server.errors import OpenAIHTTPError
from server.knowledge.service import Knowledge
from server.stores.cache import ResponseCache
from server.stores.graph_threads import ThreadRecords
from server.stores.response_store import ResponseStore
from server.stores.usage_ledger import UsageLedger
from server.telemetry.metrics import Metrics
from server.turns.kit import TurnKit
from server.wiring.state import AppState


def app_state_of(request: Request) -> AppState:
    """The resources opened by the lifespan (for code outside FastAPI's dependencies)."""
    state: AppState = request.state.agent
    return state


async def get_app_state(request: Request) -> AppState:
    """The resources opened by the lifespan."""
    return app_state_of(request)


AppStateDep = Annotated[AppState, Depends(get_app_state)]


async def get_turn_kit(request: Request) -> TurnKit:
    """The turn kit (`server.turns.kit`): what a door runs or reads a thread through."""
    return app_state_of(request).turns


TurnKitDep = Annotated[TurnKit, Depends(get_turn_kit)]


API_KEY_HEADER = "x-api-key"
"""The header LangGraph's SDKs send their key in; taken as `Authorization: Bearer` is."""


def client_authorization(request: Request) -> str | None:
    """The `Authorization` header, or an `x-api-key` header as a bearer token.

    LangGraph's SDKs (and agent-chat-ui, Studio) send the key as `x-api-key`; every other
    client as `Authorization: Bearer`. When both come, `Authorization` decides.
    """
    header = request.headers.get("authorization")
    if header is None:
        key = request.headers.get(API_KEY_HEADER)
        if key:
            return f"Bearer {key.strip()}"
    return header


def caller_of(request: Request) -> Caller:
    """The caller of this request, or a 401 in OpenAI's shape (see `server.auth.KeyRing`)."""
    caller = app_state_of(request).keys.caller(client_authorization(request))
    request.state.caller = caller
    return caller


async def authenticate(request: Request) -> Caller:
    """The caller; put on every router that needs a key (`dependencies=[Depends(...)]`)."""
    return caller_of(request)


CallerDep = Annotated[Caller, Depends(authenticate)]

KEY_COOKIE = "agent_key"
"""The cookie in which a browser holds its API key for `/agent` (set by the inspector's
login form: HttpOnly, SameSite=Strict, Path=/agent)."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(request: Request) -> bool:
    """The browser says the request comes from a page of this origin (or from the user).

    SameSite=Strict keeps the cookie from other sites, but another port of the same host is
    the same site: a request that changes something must also come from this origin.
    """
    if request.method in _SAFE_METHODS:
        return True
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by a browser's cross-origin request
    return origin.partition("://")[2] == request.headers.get("host", "")


def browser_caller_of(request: Request) -> Caller:
    """`caller_of`, also taking the key from the `KEY_COOKIE` cookie when no header is sent.

    For the routes a browser opens itself (`/agent`'s playground and inspector), which
    cannot add an `Authorization` header. A cookie on a cross-origin request that changes
    something is ignored (a 401).
    """
    caller = app_state_of(request).keys.caller(_browser_authorization(request))
    request.state.caller = caller
    return caller


def _browser_authorization(request: Request) -> str | None:
    """The `Authorization` header, or the `KEY_COOKIE` cookie as one (see `browser_caller_of`)."""
    header = client_authorization(request)
    cookie = request.cookies.get(KEY_COOKIE)
    if header is None and cookie and same_origin(request):
        return f"Bearer {cookie}"
    return header


OPERATOR_PREFIX = "/admin"
"""The operator routes' prefix: they take `authenticate_operator`."""
BROWSER_PREFIX = "/agent"
"""The prefix of the routes a browser opens (LangServe, the inspector): `authenticate_browser`."""


def door_caller(request: Request) -> Caller:
    """The caller as the door of the request's path will check it, before the door runs.

    For the middleware that must know the caller before a door reads the body
    (`server.edge.sanitize`): the operator rule under `/admin`, the browser rule (the key cookie
    too) under `/agent`, the client rule elsewhere. Nothing is stored on the request; the
    door's own dependency still decides.

    Raises:
        Refused: The door's 401 (or 403) for a missing or wrong key.
    """
    keys = app_state_of(request).keys
    path = route_path(request.scope)
    if _under(path, OPERATOR_PREFIX):
        return keys.operator(request.headers.get("authorization"))
    if _under(path, BROWSER_PREFIX):
        return keys.caller(_browser_authorization(request))
    return keys.caller(client_authorization(request))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(f"{prefix}/")


async def authenticate_browser(request: Request) -> Caller:
    """`authenticate` for the routes a browser opens (see `browser_caller_of`)."""
    return browser_caller_of(request)


BrowserCallerDep = Annotated[Caller, Depends(authenticate_browser)]


async def authenticate_operator(request: Request) -> Caller:
    """The operator calling `/admin`.

    An admin key when ADMIN_API_KEYS is set (403 for a client key), else the client doors'
    rule (see `server.auth.KeyRing.operator`).
    """
    caller = app_state_of(request).keys.operator(request.headers.get("authorization"))
    request.state.caller = caller
    return caller


async def guard_metrics(request: Request) -> None:
    """`/metrics` takes an admin key when ADMIN_API_KEYS is set, and is open otherwise.

    Open by default because Prometheus scrapes without credentials unless told to, and the
    metrics hold no secret and no user data; with admin keys set, give the scrape job one
    (`authorization.credentials_file` in its config).
    """
    keys = app_state_of(request).keys
    if keys.has_admin_keys:
        keys.operator(request.headers.get("authorization"))


async def get_usage_ledger(state: AppStateDep) -> UsageLedger:
    """The app's usage ledger (opened by the lifespan)."""
    if state.usage is None:
        raise RuntimeError("the usage ledger is opened by the lifespan")
    return state.usage


UsageLedgerDep = Annotated[UsageLedger, Depends(get_usage_ledger)]


async def get_knowledge(state: AppStateDep) -> Knowledge:
    """The knowledge base; 503 `knowledge_unavailable` when it is disabled or not open."""
    if state.knowledge is None:
        raise OpenAIHTTPError(
            503,
            "The knowledge base is not available on this service (KNOWLEDGE_ENABLED is off, "
            "or its store could not be opened: see the service's log).",
            code=ErrorCode.KNOWLEDGE_UNAVAILABLE,
        )
    return state.knowledge


KnowledgeDep = Annotated[Knowledge, Depends(get_knowledge)]


async def get_response_cache(state: AppStateDep) -> ResponseCache:
    """The app's response cache."""
    return state.ops.cache


async def get_metrics(state: AppStateDep) -> Metrics:
    """The app's Prometheus instruments."""
    return state.metrics


ResponseCacheDep = Annotated[ResponseCache, Depends(get_response_cache)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_response_store(state: AppStateDep) -> ResponseStore:
    """The app's stored responses (the Responses API's `responses` table)."""
    if state.responses is None:
        raise RuntimeError("the response store is opened by the lifespan")
    return state.responses


ResponseStoreDep = Annotated[ResponseStore, Depends(get_response_store)]


async def get_thread_records(state: AppStateDep) -> ThreadRecords:
    """The LangGraph API's thread records (`server.stores.graph_threads`)."""
    return state.graph_threads


ThreadRecordsDep = Annotated[ThreadRecords, Depends(get_thread_records)]
