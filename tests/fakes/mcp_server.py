"""A small MCP server for tests, written with the `mcp` SDK's FastMCP.

Run it over stdio (`python tests/fakes/mcp_server.py`, as the service spawns an MCP server)
or over Streamable HTTP on a loopback port (`python tests/fakes/mcp_server.py --http PORT`,
endpoint `/mcp`; `McpServerProcess` runs it so for a test). Its tools:

* `lookup_order(order_id)`: a distinctive text, so a test sees that this server answered;
* `order_status(order_id)`: structured output (a JSON object) beside its text;
* `refuse(reason)`: an MCP error result (`isError: true`) with the reason;
* `slow(seconds)`: answers after sleeping, to run into the service's tool timeout;
* `long_text(chars)`: that many characters, to run into the service's output cap;
* `pid()`: the server's process id, so a test sees a new process after a restart;
* `crash()`: ends the server's process in the middle of the call (`os._exit`), as a server
  that dies mid-call does.

`MCP_FAKE_TAG` in its environment is appended to `lookup_order`'s answer, so a test can tell
which process (or which configured `env`) answered. Over HTTP, `--authorization VALUE` makes
it answer 401 to any request without that `Authorization` header.

The script imports only the `mcp` SDK (the service runs it with its own interpreter).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel

ORDER_TEXT = "Order {order_id}: 3 blue widgets, shipped 2026-11-30 by parcel post (ref MCP-7F3A)."
"""`lookup_order`'s answer; the reference is what tests look for."""


class OrderStatus(BaseModel):
    """`order_status`'s structured result."""

    order_id: str
    status: str
    items: int


def build_server(port: int = 8000, hide: frozenset[str] = frozenset()) -> FastMCP:
    """The server with its tools but those in `hide` (`port` matters over HTTP only)."""
    server = FastMCP("fake-shop", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Look up an order of the shop by its order id: items and shipping."""
        tag = os.environ.get("MCP_FAKE_TAG")
        text = ORDER_TEXT.format(order_id=order_id)
        return f"{text} [{tag}]" if tag else text

    @server.tool()
    def order_status(order_id: str) -> OrderStatus:
        """The status of an order as a structured record."""
        return OrderStatus(order_id=order_id, status="shipped", items=3)

    @server.tool()
    def refuse(reason: str = "no reason given") -> str:
        """Always fails, with the reason given."""
        raise ToolError(f"refused: {reason}")

    @server.tool()
    async def slow(seconds: float = 5.0) -> str:
        """Answers after `seconds`."""
        await asyncio.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool()
    def long_text(chars: int = 1000) -> str:
        """A text of `chars` characters."""
        return ("0123456789" * (chars // 10 + 1))[:chars]

    @server.tool()
    def pid() -> str:
        """The id of this server's process."""
        return f"pid {os.getpid()}"

    @server.tool()
    def crash() -> str:
        """Ends this server's process in the middle of the call."""
        sys.stdout.flush()
        os._exit(3)

    for name in hide:
        server.remove_tool(name)
    return server


class RequireAuthorization:
    """ASGI middleware: 401 for an HTTP request without the expected `Authorization`."""

    def __init__(self, app: Any, expected: str) -> None:
        self.app = app
        self.expected = expected.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        if scope["type"] == "http" and headers.get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    """Serve over stdio, or over Streamable HTTP with `--http PORT`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP")
    parser.add_argument("--authorization", help="over HTTP, the Authorization header required")
    parser.add_argument("--hide", action="append", default=[], help="a tool not to offer")
    options = parser.parse_args(argv)
    hide = frozenset(options.hide)
    if options.http is None:
        build_server(hide=hide).run("stdio")
        return
    app: Any = build_server(options.http, hide).streamable_http_app()
    if options.authorization:
        app = RequireAuthorization(app, options.authorization)
    uvicorn.run(app, host="127.0.0.1", port=options.http, log_level="warning")


SCRIPT = Path(__file__).resolve()


class McpServerProcess:
    """This server over Streamable HTTP in a process of its own, on a loopback port.

    A process, not a thread, so that `crash` can end it mid-call and a test can stop it and
    start it again on the same port (`start` after `stop`).

    Args:
        port: The port; a free one when omitted.
        authorization: The `Authorization` header it requires, if any.

    Attributes:
        hide: Tools it does not offer (read at each `start`).
    """

    def __init__(self, port: int | None = None, *, authorization: str | None = None) -> None:
        if port is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self._authorization = authorization
        self.hide: set[str] = set()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> McpServerProcess:
        """Start it and wait until it accepts connections."""
        command = [sys.executable, str(SCRIPT), "--http", str(self.port)]
        if self._authorization:
            command += ["--authorization", self._authorization]
        for name in sorted(self.hide):
            command += ["--hide", name]
        self._process = subprocess.Popen(command)  # noqa: S603 - this script, fixed arguments
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the MCP server exited with {self._process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the MCP server did not start in time") from None
                time.sleep(0.05)  # the child binds its port when its imports are done

    def wait_exited(self, timeout: float = 10.0) -> int:
        """Wait for the process to end (after `crash`); its exit status."""
        assert self._process is not None
        return self._process.wait(timeout)

    def stop(self) -> None:
        """End the process (harmless when it has ended already).

        SIGTERM first; then SIGKILL, since its shutdown waits for the open sessions of its
        clients (the service's, which never ends one by itself).
        """
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


if __name__ == "__main__":
    main()
