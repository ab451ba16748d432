"""The `/mcp` route: the agent as an MCP server (Streamable HTTP), behind the API keys.

The door checks the bearer key before MCP sees the request: a missing or wrong one is a 401
in OpenAI's error shape as on every door, with RFC 6750's `WWW-Authenticate: Bearer realm=...,
error="invalid_token"` (`server.auth`: not an OAuth challenge). The caller's key id
namespaces the threads of `chat` (the same threads as `/v1` and `/agent` with that key). It
takes POST only (405 otherwise, as MCP allows a server that sends nothing unasked and keeps no
sessions). The rest is `server.mcp_server.server`, built on the first request (the `mcp` package is
not imported at start). Pure ASGI all the way, under the app's middleware (request ids,
metrics, access log).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from server.errors import error_response, status_of
from server.refusals import Refused
from server.wiring.deps import caller_of

if TYPE_CHECKING:
    from server.mcp_server.server import AgentMcpServer

__all__ = ["PATH", "McpDoor", "mount_mcp"]

PATH = "/mcp"


class McpDoor:
    """The `/mcp` ASGI app: the key check, then the MCP server (see the module docstring)."""

    def __init__(self, *, name: str, version: str) -> None:
        self._name = name
        self._version = version
        self._server: AgentMcpServer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request without a valid key (401), hand the others to MCP."""
        try:
            caller_of(Request(scope))
        except Refused as error:
            response = error_response(
                status_of(error), error.message, code=error.code, headers=error.headers
            )
            await response(scope, receive, send)
            return
        if scope["method"] != "POST":
            # GET would open a stream for messages the server sends unasked; it sends none, so
            # the stream would only sit open. DELETE ends a session; there are none.
            response = error_response(
                405, "The MCP endpoint takes POST only.", headers={"allow": "POST"}
            )
            await response(scope, receive, send)
            return
        await self._mcp().handle(scope, receive, send)

    def _mcp(self) -> AgentMcpServer:
        """The MCP server, built (and the `mcp` package imported) on first use."""
        if self._server is None:
            from server.mcp_server.server import AgentMcpServer

            self._server = AgentMcpServer(name=self._name, version=self._version)
        return self._server


class _DoorRoute(Route):
    """`/mcp` and `/mcp/` as one route (clients are configured with either), named `/mcp`.

    It names itself in the scope as FastAPI's own routes do (FastAPI's router does not for a
    plain Starlette route), so metrics and the access log count it under `/mcp`.
    """

    def __init__(self, door: McpDoor) -> None:
        super().__init__(PATH, endpoint=door, include_in_schema=False)
        self.path_regex = re.compile(f"^{re.escape(PATH)}/?$")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match either path; the route goes into the child scope."""
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def mount_mcp(app: FastAPI) -> None:
    """Serve the door at `/mcp` (and `/mcp/`), as the app's name and version."""
    app.router.routes.append(_DoorRoute(McpDoor(name=app.title, version=app.version)))
