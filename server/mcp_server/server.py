"""`AgentMcpServer`: MCP's low-level server with the door's tools, served one request at a time.

It is MCP's low-level `Server`, not `FastMCP`: the tools it lists come from the tool catalogue
the lifespan builds (plugins included), each with the JSON schema the model sees, which
FastMCP could only derive from Python signatures. Its tools are:

* `chat` (`server.mcp_server.chat`): one turn of the agent, with memory;
* every catalogue tool as itself (`server.mcp_server.tools`), run as the graph runs it.

Stateless Streamable HTTP: each HTTP request gets a transport and a server session of its own,
which end with it, as MCP's session manager does in its stateless mode, but inside the
request's task rather than in a task group opened by the lifespan. No MCP session outlives a
request (no `Mcp-Session-Id`), so with many replicas behind a load balancer any replica
answers any request; what a conversation needs is in the thread's checkpoints. Each POST is
answered as a short event stream (MCP's default), not one JSON body: a client that leaves
mid-turn closes it, which ends the request's server session and so cancels the run and its
provider request (and frees the thread); its keep-alive pings hold a long turn open through
proxies.

The `mcp` package costs about half a second of imports: this module is imported by the door
on its first request (`server.mcp_server.door`), never at start.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from anyio.abc import TaskStatus
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from server.mcp_server.chat import CHAT, CHAT_TOOL, ChatArguments, chat
from server.mcp_server.results import refusal, tool_error
from server.mcp_server.tools import call_catalogue_tool, catalogue_tool
from server.refusals import Refused
from server.wiring.deps import app_state_of, caller_of

__all__ = ["INSTRUCTIONS", "AgentMcpServer"]

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "An agent with memory. Call `chat` with a message to talk to it; pass the thread_id of "
    "its result with your next message to continue the same conversation. Its own tools "
    "(calculator, clock, ...) can be called directly too."
)


class AgentMcpServer:
    """The MCP server of the `/mcp` door (see the module docstring)."""

    def __init__(self, *, name: str, version: str) -> None:
        server: Server[Any, Request] = Server(name, version=version, instructions=INSTRUCTIONS)
        server.list_tools()(self._list_tools)  # type: ignore[no-untyped-call]  # mcp's is bare
        # Arguments are checked against the listed schema before `_call_tool` sees them.
        server.call_tool(validate_input=True)(self._call_tool)
        self._server = server

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request with a transport and a server session of its own."""
        transport = StreamableHTTPServerTransport(mcp_session_id=None)
        async with anyio.create_task_group() as session:
            await session.start(self._serve, transport)
            try:
                await transport.handle_request(scope, receive, send)
            finally:
                # Ends the server session (and any call still running) with the request.
                with anyio.CancelScope(shield=True):
                    await transport.terminate()

    async def _serve(
        self,
        transport: StreamableHTTPServerTransport,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """The request's server session, until the transport closes."""
        async with transport.connect() as (read, write):
            task_status.started()
            options = self._server.create_initialization_options()
            await self._server.run(read, write, options, stateless=True)

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
                return await chat(state.turns, request, caller, ChatArguments.parse(arguments))
            tool = state.deps.tools.get(name)
            if tool is None:
                return tool_error(f"There is no tool named {name!r}; see tools/list.")
            try:
                await state.turns.rate_limit(request, caller)  # a call of any tool counts
            except Refused as error:
                return refusal(error)
            return await call_catalogue_tool(
                tool, arguments, deps=state.deps, settings=state.settings, caller=caller.key_id
            )
        except Exception:  # the door's boundary, like server.errors' 500 handler
            logger.exception("MCP tool %r failed", name)
            return tool_error("The server had an error while processing your request.")
