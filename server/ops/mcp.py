"""The MCP servers of MCP_SERVERS: connected at start, watched, reconnected in the background.

One task per server, owned by the lifespan (`open_mcp_servers`) and cancelled at shutdown,
holds that server's session (`nodes.tools.mcp.open_link`) for as long as it lives: a stdio
server is one child process for all calls (a call costs milliseconds, not the ~1 s a new
Python process and session cost), a Streamable HTTP server one session. The task pings the
server every MCP_PING_SECONDS; a session that fails a call or a ping is closed and opened
again at once, then with a doubling pause (up to MCP_RETRY_MAX_SECONDS) while the server
stays down. The start waits for every server's first attempt (up to MCP_CONNECT_TIMEOUT),
so a server that is up has its tools before the first request; one that is down is logged
and the service starts without its tools, which appear in the tool registry (and so are
offered to the model) when it comes up, without a restart. `/ready` shows each server's
state (`McpServers.status`) and the degraded mode `mcp-servers-down`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.tools import BaseTool

from nodes.tools import ToolRegistry
from server.settings import McpHttpServer, McpStdioServer, Settings

if TYPE_CHECKING:
    from langchain_mcp_adapters.sessions import (
        Connection,
        StdioConnection,
        StreamableHttpConnection,
    )

    from nodes.tools.mcp import McpLink

logger = logging.getLogger(__name__)

McpState = Literal["connecting", "up", "down"]

RETRY_FIRST_SECONDS = 0.5
"""The pause before the second attempt at a server that is down; it doubles each time."""


@dataclass
class McpServer:
    """One configured server and what is known of it now."""

    name: str
    transport: Literal["stdio", "http"]
    connection: Connection
    state: McpState = "connecting"
    tools: list[str] = field(default_factory=list)
    """The names of its tools in the registry (kept while it is down: calls say why)."""
    error: str | None = None
    """Why it is down, or why it last went down."""
    since: float = field(default_factory=time.time)
    """When `state` last changed (Unix time)."""
    link: McpLink | None = None

    def describe(self) -> dict[str, Any]:
        """This server in `/ready`."""
        return {
            "state": self.state,
            "transport": self.transport,
            "tools": len(self.tools),
            "error": self.error,
            "since": round(self.since, 3),
        }


def connection_of(spec: McpStdioServer | McpHttpServer, settings: Settings) -> Connection:
    """The adapters' connection for a server of MCP_SERVERS.

    Raises:
        ValueError: A `headers_env` variable is not set.
    """
    if isinstance(spec, McpStdioServer):
        stdio: StdioConnection = {"transport": "stdio", "command": spec.command, "args": spec.args}
        if spec.env:
            stdio["env"] = dict(spec.env)  # added to the SDK's safe defaults (PATH, HOME, ...)
        if spec.cwd is not None:
            stdio["cwd"] = spec.cwd
        return stdio
    headers = dict(spec.headers)
    for header, variable in spec.headers_env.items():
        value = settings.environment_secret(variable)
        if value is None:
            raise ValueError(
                f"MCP_SERVERS: header {header!r} names the variable {variable}, which is not set"
            )
        headers[header] = value.get_secret_value()
    http: StreamableHttpConnection = {
        "transport": "streamable_http",
        "url": spec.url,
        "headers": headers,
        "timeout": settings.mcp_connect_timeout,
    }
    return http


class McpServers:
    """The MCP servers of the settings: their state, their sessions, their tools.

    Args:
        servers: By name, with their connections.
        connect_timeout: Seconds one attempt (connect, initialize, list tools) or ping may take.
        ping_seconds: Seconds between pings of a connected server.
        retry_max_seconds: The longest pause between attempts at a server that is down.
    """

    def __init__(
        self,
        servers: Mapping[str, McpServer],
        *,
        connect_timeout: float,
        ping_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self.servers = dict(servers)
        self._connect_timeout = connect_timeout
        self._ping_seconds = ping_seconds
        self._retry_max = retry_max_seconds
        self._registry: ToolRegistry | None = None
        self._loaded: dict[str, list[BaseTool]] = {}
        self._tried: dict[str, asyncio.Event] = {name: asyncio.Event() for name in self.servers}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def all_up(self) -> bool:
        """Whether every server is connected."""
        return all(server.state == "up" for server in self.servers.values())

    def status(self) -> dict[str, Any]:
        """Every server's state, for `/ready`."""
        return {
            "ok": self.all_up,
            "configured": True,
            "servers": {name: server.describe() for name, server in self.servers.items()},
        }

    def bind(self, registry: ToolRegistry) -> None:
        """Put the servers' tools in this registry, now and whenever they (re)connect."""
        self._registry = registry
        for name, tools in self._loaded.items():
            self._install(self.servers[name], tools)

    async def start(self) -> None:
        """Start one task per server and wait for each one's first attempt (bounded)."""
        for server in self.servers.values():
            task = asyncio.create_task(self._supervise(server), name=f"mcp-{server.name}")
            task.add_done_callback(self._ended)
            self._tasks.append(task)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._connect_timeout + 1.0):
                await asyncio.gather(*(event.wait() for event in self._tried.values()))

    async def aclose(self) -> None:
        """Stop every task; their sessions close, stdio servers' processes end."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "MCP server task %s crashed; its server stays down until a restart",
                task.get_name(),
                exc_info=task.exception(),
            )

    def _set(self, server: McpServer, state: McpState, error: str | None = None) -> None:
        if server.state != state:
            server.since = time.time()
        server.state, server.error = state, error

    async def _supervise(self, server: McpServer) -> None:
        """Connect, serve, and reconnect the server for as long as the service runs."""
        from nodes.tools.mcp import LINK_ERRORS  # the SDK is imported only when used

        pause, failures = RETRY_FIRST_SECONDS, 0
        while True:
            reason = "the session closed"
            try:
                reason = await self._serve(server)
            except* LINK_ERRORS as group:
                reason = _reason(group)
            finally:
                server.link = None
                self._tried[server.name].set()
            if server.state == "up":  # it went away: try again at once, then back off
                logger.warning("MCP server %r went away (%s); reconnecting", server.name, reason)
                self._set(server, "connecting", reason)
                pause, failures = RETRY_FIRST_SECONDS, 0
                continue
            logger.log(
                logging.WARNING if failures == 0 else logging.DEBUG,
                "MCP server %r is unreachable (%s); retrying in the background",
                server.name,
                reason,
            )
            failures += 1
            self._set(server, "down", reason)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._retry_max)
            self._set(server, "connecting", reason)

    async def _serve(self, server: McpServer) -> str:
        """One session: open it, install its tools, ping it until it is lost.

        Returns:
            Why the session was lost (it was up until then).
        """
        from nodes.tools.mcp import open_link

        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout):
                link = await stack.enter_async_context(open_link(server.name, server.connection))
                tools = await link.load_tools()
            server.link = link
            self._loaded[server.name] = tools
            self._install(server, tools)
            self._set(server, "up")
            self._tried[server.name].set()
            logger.info(
                "MCP server %r connected: tools %s", server.name, ", ".join(server.tools) or "none"
            )
            await self._watch(link)
        return link.reason or "the session closed"

    async def _watch(self, link: McpLink) -> None:
        """Return once the session is lost: a failed call, or a ping that failed."""
        from nodes.tools.mcp import LINK_ERRORS

        while not link.lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_seconds):
                    await link.lost.wait()
            if link.lost.is_set():
                return
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await link.ping()
            except LINK_ERRORS as exc:
                link.lose(_reason(exc))

    def _install(self, server: McpServer, tools: list[BaseTool]) -> None:
        """Make the registry hold exactly this server's current tools (when bound)."""
        registry = self._registry
        if registry is None:
            return
        current = {tool.name for tool in tools}
        for name in server.tools:
            if name not in current:
                registry.unregister(name)
        installed: list[str] = []
        for tool in tools:
            if tool.name in server.tools:
                registry.replace(tool)
            elif tool.name in registry:
                logger.warning(
                    "MCP server %r: tool %r is left out: the name is taken by another tool",
                    server.name,
                    tool.name,
                )
                continue
            else:
                registry.register(tool)
            installed.append(tool.name)
        server.tools = installed


def _reason(error: BaseException) -> str:
    """A short reason for the logs and `/ready`: the first leaf of an exception group."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@asynccontextmanager
async def open_mcp_servers(settings: Settings) -> AsyncIterator[McpServers | None]:
    """Connect to the MCP servers of MCP_SERVERS; None when there are none.

    The servers' tools go to the registry given to `McpServers.bind`.

    Raises:
        ValueError: A `headers_env` variable is not set.
    """
    if not settings.mcp_servers:
        yield None
        return
    servers = McpServers(
        {
            name: McpServer(
                name=name,
                transport="stdio" if isinstance(spec, McpStdioServer) else "http",
                connection=connection_of(spec, settings),
            )
            for name, spec in settings.mcp_servers.items()
        },
        connect_timeout=settings.mcp_connect_timeout,
        ping_seconds=settings.mcp_ping_seconds,
        retry_max_seconds=settings.mcp_retry_max_seconds,
    )
    await servers.start()
    try:
        yield servers
    finally:
        await servers.aclose()
