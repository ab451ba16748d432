"""Request id, HTTP metrics and the access log, as one pure ASGI middleware.

Pure ASGI (no `BaseHTTPMiddleware`) so streaming responses pass through untouched and a client
that disconnects still cancels its run. Per HTTP request it:

* takes the client's `X-Request-Id` when it is sane, else makes one, and echoes it back;
* sets `server.telemetry.logging.current_request` so every log line of the request carries it;
* counts the request by method, route *template* and status, times it to the end of the body,
  and tracks open server-sent-event streams;
* writes one access log line: method, route, status, duration_ms, and for a graph run the
  provider, time to first token and tokens (successful probes and scrapes at DEBUG, so they
  do not drown the rest).

The metrics come from the lifespan state (`scope["state"]["agent"].metrics`); before the
lifespan has run there is nothing to count into and the request is only logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.telemetry.logging import RequestInfo, current_request, hash_thread_id
from server.telemetry.metrics import HTTP_METHODS, OTHER, Metrics, bounded

access_log = logging.getLogger("server.access")

REQUEST_ID_HEADER: Final = "x-request-id"
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: Status logged and counted when the client went away before any response was sent.
CLIENT_CLOSED: Final = 499
#: Probes and scrapes arrive every few seconds: their successes are logged at DEBUG only.
QUIET_ROUTES: Final = frozenset({"/health", "/ready", "/metrics"})


def request_id_from(headers: Headers) -> str:
    """The client's request id when it is short and printable, else a fresh one."""
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None and _SANE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/models/{model_id}`), or `other` when none matched.

    Raw paths would put user input (ids, typos, scanners' probes) into label values.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path.startswith("/"):
        prefix = scope.get("app_root_path", "") or ""
        root = scope.get("root_path", "") or ""
        # A route of a mounted sub-app is relative to its mount point.
        mount = root[len(prefix) :] if root.startswith(prefix) else ""
        return f"{mount}{path}"
    return OTHER


def _metrics_of(scope: Scope) -> Metrics | None:
    state: dict[str, Any] = scope.get("state") or {}
    metrics = getattr(state.get("agent"), "metrics", None)
    return metrics if isinstance(metrics, Metrics) else None


def _no_thread(headers: Headers) -> str | None:
    return None


class ObservabilityMiddleware:
    """Wraps the app; see the module docstring."""

    def __init__(
        self, app: ASGIApp, *, thread_id_of: Callable[[Headers], str | None] = _no_thread
    ) -> None:
        """Observe `app`.

        Args:
            app: The app.
            thread_id_of: The thread id a request's headers name, unchecked, for the log
                (`server.turns.threads.header_thread_id`); the log keeps only its hash.
        """
        self.app = app
        self._thread_id_of = thread_id_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection event; only HTTP requests are observed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = request_id_from(headers)
        thread_id = self._thread_id_of(headers)
        info = RequestInfo(
            request_id=request_id,
            method=bounded(scope["method"], HTTP_METHODS),
            thread=hash_thread_id(thread_id) if thread_id else None,
        )
        token = current_request.set(info)
        metrics = _metrics_of(scope)
        status = 500
        started = False
        stream_route: str | None = None

        async def send_observed(message: Message) -> None:
            nonlocal status, started, stream_route
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
                info.route = route_template(scope)
                response_headers = Headers(raw=list(message.get("headers", [])))
                raw = list(message.get("headers", []))
                if REQUEST_ID_HEADER not in response_headers:
                    raw.append((REQUEST_ID_HEADER.encode("latin-1"), request_id.encode("latin-1")))
                message = {**message, "headers": raw}
                content_type = response_headers.get("content-type", "")
                if metrics is not None and content_type.startswith("text/event-stream"):
                    stream_route = info.route
                    metrics.active_streams.labels(route=stream_route).inc()
            await send(message)

        if metrics is not None:
            metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_observed)
        except asyncio.CancelledError:
            if not started:
                status = CLIENT_CLOSED
            raise
        finally:
            duration = time.perf_counter() - info.started
            info.route = route_template(scope)
            if metrics is not None:
                metrics.http_in_flight.dec()
                if stream_route is not None:
                    metrics.active_streams.labels(route=stream_route).dec()
                metrics.http_requests.labels(
                    method=info.method, route=info.route, status=str(status)
                ).inc()
                metrics.http_duration.labels(method=info.method, route=info.route).observe(duration)
            quiet = info.route in QUIET_ROUTES and status < 400
            access_log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %d %.1fms",
                info.method,
                info.route,
                status,
                duration * 1000,
                extra={
                    "method": info.method,
                    "status": status,
                    "duration_ms": round(duration * 1000, 1),
                    "provider": info.provider,
                    "ttft_ms": info.ttft_ms,
                    "input_tokens": info.input_tokens,
                    "output_tokens": info.output_tokens,
                },
            )
            current_request.reset(token)
