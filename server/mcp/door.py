"""`McpDoor`: the agent as an MCP server at `/mcp` (Streamable HTTP), behind the API keys.

It serves MCP's low-level `Server`, not `FastMCP`: the tools it lists come from the tool
catalogue the lifespan builds (plugins included), each with the JSON schema the model sees,
which FastMCP could only derive from Python signatures. The server's tools are:

* `chat` (`server.mcp.chat`): one turn of the agent, with memory;
* every catalogue tool as itself (`server.mcp.tools`), run as the graph runs it.

Transport: stateless Streamable HTTP. No session lives in the replica (no `Mcp-Session-Id`),
so with many replicas behind a load balancer any replica answers any request; what a
conversation needs is in the thread's checkpoints. Each POST is answered as a short event
stream (MCP's default) rather than one JSON body: a client that leaves mid-turn closes it,
which ends the call's handler and so cancels the run and its provider request (and frees the
thread), and its keep-alive pings hold a long turn open through proxies.

Keys: the door checks the bearer key before MCP sees the request: a missing or wrong one is a
401 in OpenAI's error shape as on every door, with `WWW-Authenticate: Bearer`. The caller's
key id namespaces the threads of `chat` (the same threads as `/v1` and `/agent` with that
key). Pure ASGI all the way, under the app's middleware (request ids, metrics, access log).
"""

from __future__ import annotations

import logging
import re
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from server.deps import app_state_of, caller_of, rate_limit
from server.errors import OpenAIHTTPError, error_response
from server.mcp.chat import CHAT, CHAT_TOOL, ChatArguments, chat
from server.mcp.results import refusal, tool_error
from server.mcp.tools import call_catalogue_tool, catalogue_tool

__all__ = ["PATH", "McpDoor", "mount_mcp"]

PATH = "/mcp"

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "An agent with memory. Call `chat` with a message to talk to it; pass the thread_id of "
    "its result with your next message to continue the same conversation. Its own tools "
    "(calculator, clock, ...) can be called directly too."
)


class McpDoor:
    """The `/mcp` ASGI app: the key check, then MCP's session manager (see the module)."""

    def __init__(self, *, name: str, version: str) -> None:
        server: Server[Any, Request] = Server(name, version=version, instructions=INSTRUCTIONS)
        server.list_tools()(self._list_tools)  # type: ignore[no-untyped-call]  # mcp's is bare
        # Arguments are checked against the listed schema before `_call_tool` sees them.
        server.call_tool(validate_input=True)(self._call_tool)
        self._server = server
        self._sessions = StreamableHTTPSessionManager(server, stateless=True)

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group: entered by the app's lifespan, once."""
        return self._sessions.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request without a valid key (401), hand the others to MCP."""
        try:
            caller_of(Request(scope))
        except OpenAIHTTPError as error:
            headers = {**error.headers, "www-authenticate": "Bearer"}
            response = error_response(error.status, error.message, code=error.code, headers=headers)
            await response(scope, receive, send)
            return
        await self._sessions.handle_request(scope, receive, send)

    def _request(self) -> Request:
        """The HTTP request of the MCP request being handled (the transport passes it on)."""
        request = self._server.request_context.request
        if not isinstance(request, Request):
            raise RuntimeError("the MCP door serves requests over HTTP only")
        return request

    async def _list_tools(self) -> list[types.Tool]:
        """`chat`, then the catalogue's tools (a plugin named `chat` is not listed)."""
        catalogue = app_state_of(self._request()).deps.tools.tools()
        return [CHAT_TOOL, *(catalogue_tool(tool) for tool in catalogue if tool.name != CHAT)]

    async def _call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Run `chat` or a catalogue tool; a failure is a tool error, never a broken session."""
        request = self._request()
        state = app_state_of(request)
        caller = caller_of(request)
        try:
            if name == CHAT:
                return await chat(state, request, caller, ChatArguments.parse(arguments))
            tool = state.deps.tools.get(name)
            if tool is None:
                return tool_error(f"There is no tool named {name!r}; see tools/list.")
            try:
                await rate_limit(request, caller, state)  # a call of any tool counts
            except OpenAIHTTPError as error:
                return refusal(error)
            return await call_catalogue_tool(
                tool, arguments, deps=state.deps, settings=state.settings
            )
        except Exception:  # the door's boundary, like server.errors' 500 handler
            logger.exception("MCP tool %r failed", name)
            return tool_error("The server had an error while processing your request.")


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


def mount_mcp(app: FastAPI, door: McpDoor) -> None:
    """Serve the door at `/mcp` (and `/mcp/`)."""
    app.router.routes.append(_DoorRoute(door))
