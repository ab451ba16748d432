"""The MCP servers of MCP_SERVERS: connected at start, watched, reconnected in the background.

One task per server, owned by the lifespan (`open_mcp_servers`) and cancelled at shutdown,
holds that server's session (`nodes.tools.mcp_tools.open_link`) for as long as it lives: a stdio
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
import functools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.tools import BaseTool

from graph.errors import ToolUnavailableError
from nodes.redact import redact_urls
from nodes.tools import ToolRegistry
from server.settings import McpHttpServer, McpStdioServer, Settings

if TYPE_CHECKING:
    from langchain_mcp_adapters.sessions import (
        Connection,
        StdioConnection,
        StreamableHttpConnection,
    )

    from nodes.tools.mcp_tools import McpLink

logger = logging.getLogger(__name__)

McpState = Literal["connecting", "up", "down"]

RETRY_FIRST_SECONDS = 0.5
"""The pause before the second attempt at a server that is down; it doubles each time."""
_CANCEL_ATTEMPTS = 5
_CANCEL_WAIT_SECONDS = 0.5
"""At shutdown, how often (and how long each time) a connection task is cancelled and awaited."""
STABLE_SECONDS = 10.0
"""A session that lasted less went away soon after it started: a second such one in a row
backs off instead of reconnecting at once (a server that crashes at each start)."""


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
    """The live session while it is up."""
    sessions: int = 0
    """Sessions opened so far (more than one: it went away and came back)."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def describe(self) -> dict[str, Any]:
        """This server in `/ready`."""
        return {
            "state": self.state,
            "transport": self.transport,
            "tools": len(self.tools),
            "error": self.error,
            "since": round(self.since, 3),
            "sessions": self.sessions,
        }

    def set_state(self, state: McpState, error: str | None = None) -> None:
        """Record a new state (and wake the calls waiting for one)."""
        if state != self.state:
            self.since = time.time()
        self.state, self.error = state, error
        self._changed.set()
        self._changed = asyncio.Event()

    async def current_link(self) -> McpLink:
        """The live session; while a (re)connection is under way, the one it opens.

        A call waits for an attempt under way (the tools node's timeout bounds the wait), so
        the first call after a server went away finds it respawned; while the server is down
        between attempts, a call fails at once.

        Raises:
            ToolUnavailableError: The server is down.
        """
        while True:
            link = self.link
            if link is not None and not link.lost.is_set():
                return link
            if self.state == "down":
                raise ToolUnavailableError(
                    f"the MCP server {self.name!r} is unreachable ({self.error}); the service "
                    "keeps trying to reconnect to it"
                )
            await self._changed.wait()


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
            task.add_done_callback(functools.partial(self._ended, server))
            self._tasks.append(task)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._connect_timeout + 1.0):
                await asyncio.gather(*(event.wait() for event in self._tried.values()))

    async def aclose(self) -> None:
        """Stop every task; their sessions close, stdio servers' processes end.

        A cancellation can be swallowed (the SDK's anyio task groups, when it lands while a
        connection attempt is failing): a task still running a moment later is cancelled
        again, a few times, before it is left behind with a warning, so shutdown never hangs.
        """
        pending = set(self._tasks)
        for _ in range(_CANCEL_ATTEMPTS):
            for task in pending:
                task.cancel()
            if not pending:
                break
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT_SECONDS)
        if pending:
            logger.warning("%d MCP connection task(s) did not stop; leaving them", len(pending))
        await asyncio.gather(*(t for t in self._tasks if t.done()), return_exceptions=True)
        self._tasks.clear()

    def _ended(self, server: McpServer, task: asyncio.Task[None]) -> None:
        """A task ends only at shutdown; one that failed is a bug: say so, mark it down."""
        error = None if task.cancelled() else task.exception()
        if error is not None:
            logger.error(
                "MCP server %r: its connection task failed; the server stays down until the "
                "service restarts",
                server.name,
                exc_info=error,
            )
            server.set_state("down", f"internal error: {_reason(error)}")
        self._tried[server.name].set()

    async def _supervise(self, server: McpServer) -> None:
        """Connect, serve, and reconnect the server for as long as the service runs."""
        from nodes.tools.mcp_tools import LINK_ERRORS  # the SDK is imported only when used

        pause, failures, short_lived = RETRY_FIRST_SECONDS, 0, 0
        while True:
            reason, opened, started = "the session closed", server.sessions, time.monotonic()
            try:
                reason = await self._serve(server)
            except* LINK_ERRORS as group:
                reason = _reason(group)
            finally:
                server.link = None
                self._tried[server.name].set()
            if server.sessions > opened:  # it was up and went away
                logger.warning("MCP server %r went away (%s); reconnecting", server.name, reason)
                lived = time.monotonic() - started
                short_lived = short_lived + 1 if lived < STABLE_SECONDS else 0
                if short_lived <= 1:  # try again at once (calls wait for it)
                    server.set_state("connecting", reason)
                    pause, failures = RETRY_FIRST_SECONDS, 0
                    continue
                # It keeps dying soon after it starts: back off, as from a server that is down.
            else:
                logger.log(
                    logging.WARNING if failures == 0 else logging.DEBUG,
                    "MCP server %r is unreachable (%s); retrying in the background",
                    server.name,
                    reason,
                )
                failures += 1
            server.set_state("down", reason)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._retry_max)
            server.set_state("connecting", reason)

    async def _serve(self, server: McpServer) -> str:
        """One session: open it, install its tools, ping it until it is lost.

        Returns:
            Why the session was lost (it was up until then); a session that fails raises.
        """
        from nodes.tools.mcp_tools import open_link, server_tool

        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout):
                link = await stack.enter_async_context(open_link(server.name, server.connection))
                listed = await link.load_tools()
            tools = [
                server_tool(name, tool, server.name, server.current_link)
                for name, tool in listed.items()
            ]
            server.link, server.sessions = link, server.sessions + 1
            self._loaded[server.name] = tools
            self._install(server, tools)
            server.set_state("up")
            self._tried[server.name].set()
            names = ", ".join(tool.name for tool in tools) or "none"
            logger.info("MCP server %r connected: tools %s", server.name, names)
            await self._watch(link)
            reason = link.reason or "the session closed"
            server.link = None
            server.set_state("connecting", reason)  # calls from now on wait for the next session
        return reason

    async def _watch(self, link: McpLink) -> None:
        """Return once the session is lost: a failed call, or a ping that failed."""
        from nodes.tools.mcp_tools import LINK_ERRORS

        while not link.lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_seconds):
                    await link.lost.wait()
            if link.lost.is_set():
                return
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await link.ping()
            except TimeoutError:
                link.lose(f"no answer to a ping within {self._connect_timeout:g} s")
                return
            except LINK_ERRORS:
                return  # `McpLink.ping` lost the link

    def _install(self, server: McpServer, tools: list[BaseTool]) -> None:
        """Put this server's current tools in the registry (when bound).

        A tool the server lists again replaces its earlier version; one it no longer lists
        stays registered (a turn may already have offered it, and the model must be able to
        call what it was offered), and its calls say that the server no longer offers it.
        """
        registry = self._registry
        if registry is None:
            return
        installed = list(server.tools)
        for tool in tools:
            if tool.name in server.tools:
                registry.replace(tool)
            elif tool.name in registry:
                logger.warning(
                    "MCP server %r: tool %r is left out: the name is taken by another tool",
                    server.name,
                    tool.name,
                )
            else:
                registry.register(tool)
                installed.append(tool.name)
        gone = set(installed) - {tool.name for tool in tools}
        if gone:
            logger.info(
                "MCP server %r no longer lists %s; calls to them say so",
                server.name,
                ", ".join(sorted(gone)),
            )
        server.tools = installed


def _reason(error: BaseException) -> str:
    """A short reason for the logs and `/admin/ready`: the first leaf of an exception group.

    URLs in it lose their credentials and query (an MCP URL may carry `?token=`).
    """
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = redact_urls(str(error))
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
