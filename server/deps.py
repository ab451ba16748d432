"""FastAPI dependencies: the only reader of the app's state, and every alias routes use.

Route signatures say what they use (`state: AppStateDep`, `caller: CallerDep`). Dependencies
are `async def` on purpose: FastAPI runs plain `def` ones in a thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from graph.errors import ErrorCode
from server.auth import Caller
from server.errors import OpenAIHTTPError
from server.obs.metrics import Metrics
from server.ops.cache import ResponseCache
from server.ops.ratelimit import over_limit_message, subject_of
from server.state import AppState


def app_state_of(request: Request) -> AppState:
    """The resources opened by the lifespan (for code outside FastAPI's dependencies)."""
    state: AppState = request.state.agent
    return state


async def get_app_state(request: Request) -> AppState:
    """The resources opened by the lifespan."""
    return app_state_of(request)


AppStateDep = Annotated[AppState, Depends(get_app_state)]


def caller_of(request: Request) -> Caller:
    """The caller of this request, or a 401 in OpenAI's shape (see `server.auth.KeyRing`)."""
    caller = app_state_of(request).keys.caller(request.headers.get("authorization"))
    request.state.caller = caller
    return caller


async def authenticate(request: Request) -> Caller:
    """The caller; put on every router that needs a key (`dependencies=[Depends(...)]`)."""
    return caller_of(request)


CallerDep = Annotated[Caller, Depends(authenticate)]


async def rate_limit(request: Request, caller: CallerDep, state: AppStateDep) -> None:
    """A 429 when the caller is over its limit (after `authenticate`).

    The decision is left in the request's state for `server.ops.ratelimit.RateLimitHeaders`.

    Raises:
        OpenAIHTTPError: 429 `rate_limit_exceeded` with `Retry-After` and `x-ratelimit-*`.
    """
    limiter = state.ops.limiter
    if not limiter.enabled:
        return
    decision = await limiter.hit(subject_of(request, caller.key_id))
    request.state.rate_limit = decision
    if not decision.allowed:
        raise OpenAIHTTPError(
            429,
            over_limit_message(decision),
            code=ErrorCode.RATE_LIMIT_EXCEEDED,
            headers=decision.headers(),
        )


async def get_response_cache(state: AppStateDep) -> ResponseCache:
    """The app's response cache."""
    return state.ops.cache


async def get_metrics(state: AppStateDep) -> Metrics:
    """The app's Prometheus instruments."""
    return state.metrics


ResponseCacheDep = Annotated[ResponseCache, Depends(get_response_cache)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
