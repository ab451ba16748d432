"""Tools of MCP servers, through the LangChain MCP adapters: one session, its tools, their text.

A `McpLink` is one live session to one server (a stdio child process or a Streamable HTTP
session), opened by `open_link`. Its tools come from the adapters' `load_mcp_tools`, named
`<server>_<tool>` by the adapters' prefix option, and each call goes through the adapters'
own path (`session.call_tool`, their conversion of MCP content and of `isError` results).
The link is the adapters' tool-call interceptor: it refuses calls once the session is lost,
and a session that dies during a call ends the call at once with `ToolUnavailableError`, so
the tools node answers the model with an error `ToolMessage` instead of waiting out the
timeout. The agent offers `server_tool`s: each answers with text (`tool_text`), the way the
built-in tools do, and runs on whatever session is current, so it survives reconnections.

Who opens links, retries them and puts their tools in the registry: `server.stores.mcp_servers`.
Importing this module costs about 1.8 s (the `mcp` SDK and the adapters), so only that code
imports it, and only when MCP servers are configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.sessions import Connection, create_session
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.types import CONNECTION_CLOSED
from pydantic import ValidationError

from graph.errors import ToolUnavailableError
from nodes.redact import redact_urls

__all__ = [
    "LINK_ERRORS",
    "TOOL_NAME",
    "LinkSource",
    "McpLink",
    "open_link",
    "server_tool",
    "tool_name",
    "tool_text",
]

logger = logging.getLogger(__name__)

#: OpenAI's rule for a function name, which every offered tool must meet.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")

#: What opening, using or pinging a session raises when the server is unreachable, has gone
#: away or speaks something else: the connection is lost, not the program broken.
LINK_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # a command that does not exist, a refused connection
    httpx.HTTPError,
    McpError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    TimeoutError,
    ValidationError,  # a server that answers something that is not MCP
)

#: The SDK's code when a Streamable HTTP server no longer knows the session (it restarted).
_SESSION_TERMINATED = 32600
_CALL_ID = "mcp"


def tool_name(prefixed: str) -> str | None:
    """The offered name of a tool the adapters named `<server>_<tool>`, or None if none fits.

    MCP allows tool names OpenAI does not (dots, slashes): those characters become `_`. A
    name longer than OpenAI's 64 characters cannot be offered at all.
    """
    name = _NOT_IN_NAME.sub("_", prefixed)
    return name if TOOL_NAME.match(name) else None


def _block_text(block: object) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return str(block)
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    what = block.get("mime_type") or kind
    where = block.get("url")
    return f"[{kind}: {what}{f' at {where}' if where else ''}]"


def tool_text(content: object, artifact: object = None) -> str:
    """The text of an MCP tool's result: its text blocks, else its structured content.

    Text blocks are joined by newlines; an image or file block is named in brackets (the
    model sees text only, as from every other tool). Structured content is shown as JSON only
    when there is no text: servers send the same JSON as a text block beside it.
    """
    blocks = content if isinstance(content, list) else [content]
    text = "\n".join(part for part in map(_block_text, blocks) if part)
    if not text and isinstance(artifact, dict) and artifact.get("structured_content"):
        text = json.dumps(artifact["structured_content"], ensure_ascii=False)
    return text or "(the tool returned nothing)"


LinkSource = Callable[[], Awaitable["McpLink"]]
"""The server's current session, perhaps after waiting for a reconnection under way; raises
`ToolUnavailableError` when there is none."""


def server_tool(name: str, tool: BaseTool, server: str, link: LinkSource) -> BaseTool:
    """The tool the agent offers for one MCP tool: text out, errors raised, any session.

    Each call runs on the server's current session (`link`), so the tool outlives the session
    it was listed on: after a reconnection, the same tool calls the new session.

    Args:
        name: The offered name (`<server>_<tool>`, see `tool_name`).
        tool: The adapters' tool as listed (its description and JSON schema are offered).
        server: The server's name.
        link: Where each call finds the current session.
    """

    async def call(**arguments: Any) -> str:
        current = (await link()).tools.get(name)
        if current is None:
            raise ToolUnavailableError(f"the MCP server {server!r} no longer offers this tool")
        request = ToolCall(name=current.name, args=arguments, id=_CALL_ID, type="tool_call")
        try:
            message = await current.ainvoke(request)
        except (NotImplementedError, ValueError) as exc:  # the adapters' content conversion
            raise ToolException(
                f"the MCP tool answered with content it cannot pass on: {exc}"
            ) from exc
        if not isinstance(message, ToolMessage):
            raise ToolException(f"the MCP tool answered with {type(message).__name__}")
        text = tool_text(message.content, message.artifact)
        if message.status == "error":
            raise ToolException(text)
        return text

    return StructuredTool(
        name=name,
        description=tool.description,
        args_schema=tool.args_schema,
        coroutine=call,
        metadata={**(tool.metadata or {}), "mcp_server": server},
    )


class McpLink:
    """One live session to one MCP server, and the interceptor of its tools' calls.

    Args:
        server: The server's name (the tools' prefix).
        session: The initialized session; owned by `open_link`, which closes it.
    """

    def __init__(self, server: str, session: ClientSession) -> None:
        self.server = server
        self.session = session
        self.lost = asyncio.Event()
        """Set once the session is gone: closed, or failed in a call or a ping."""
        self.reason: str | None = None
        """Why it was lost, when that is known (for the logs, `/ready` and the model)."""
        self.tools: dict[str, BaseTool] = {}
        """The adapters' tools on this session, by offered name (`load_tools`)."""

    def lose(self, reason: str | None = None) -> None:
        """Mark the session gone (the owner reconnects); the first reason given is kept."""
        if self.reason is None:
            self.reason = reason
        self.lost.set()

    async def load_tools(self) -> dict[str, BaseTool]:
        """List the server's tools (`tools`), by offered name; those no name fits are left out."""
        loaded = await load_mcp_tools(
            self.session,
            server_name=self.server,
            tool_name_prefix=True,
            tool_interceptors=[self],
        )
        self.tools = {}
        for tool in loaded:
            name = tool_name(tool.name)
            if name is None:
                logger.warning(
                    "MCP server %r: tool %r is left out: %r is longer than the 64 characters "
                    "a tool name may have",
                    self.server,
                    tool.name.removeprefix(f"{self.server}_"),
                    tool.name,
                )
            elif name in self.tools:
                logger.warning("MCP server %r: tool %r is listed twice", self.server, name)
            else:
                self.tools[name] = tool
        return self.tools

    async def ping(self) -> None:
        """Ask the server for a ping; a failure loses the session and is raised."""
        try:
            await self.session.send_ping()
        except LINK_ERRORS as exc:
            self.lose(f"ping failed: {_describe(exc)}")
            raise

    async def __call__(
        self,
        request: MCPToolCallRequest,
        handler: Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]],
    ) -> MCPToolCallResult:
        """Run one tool call on this session, unless it is lost before or during the call.

        Raises:
            ToolUnavailableError: The session is lost (the owner reconnects).
            ToolException: The server refused the request itself (a JSON-RPC error).
        """
        if self.lost.is_set():
            raise ToolUnavailableError(self._gone("is not connected"))
        call = asyncio.ensure_future(handler(request))
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait((call, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (call, lost):
                task.cancel()
            await asyncio.wait((call, lost))
        if call.cancelled():
            raise ToolUnavailableError(self._gone("went away during the call"))
        try:
            return call.result()
        except McpError as exc:
            if exc.error.code not in (CONNECTION_CLOSED, _SESSION_TERMINATED):
                message = f"the MCP server refused the call: {exc.error.message}"
                raise ToolException(message) from exc
            self.lose(exc.error.message)
            raise ToolUnavailableError(self._gone("went away during the call")) from exc
        except LINK_ERRORS as exc:
            self.lose(_describe(exc))
            raise ToolUnavailableError(self._gone("went away during the call")) from exc

    def _gone(self, what: str) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"the MCP server {self.server!r} {what}{why}; the service is reconnecting to it"


def _describe(exc: BaseException) -> str:
    text = redact_urls(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@asynccontextmanager
async def open_link(server: str, connection: Connection) -> AsyncIterator[McpLink]:
    """Open and initialize a session to the server; close it (and its process) on exit.

    Enter and exit it in the same task (the SDK's transports are anyio task groups). On
    exit, however it happens, the link is lost, so calls still waiting on it end at once.

    Raises:
        One of `LINK_ERRORS` (perhaps in an exception group) when the server cannot be
        reached or its session fails.
    """
    async with create_session(connection) as session:
        await session.initialize()
        link = McpLink(server, session)
        try:
            yield link
        finally:
            link.lose()
