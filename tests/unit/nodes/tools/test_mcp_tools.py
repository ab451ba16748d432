"""nodes/tools/mcp_tools.py over a real FastMCP server in this process (the SDK's memory
streams)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from langchain_core.tools import ToolException
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.shared.memory import create_connected_server_and_client_session

from graph.errors import ToolUnavailableError
from nodes.tools.mcp_tools import McpLink, server_tool, tool_name, tool_text

LONG = "x" * 61


def build_server(started: asyncio.Event) -> FastMCP:
    server = FastMCP("unit")

    @server.tool()
    def greet(name: str) -> str:
        """Greets someone by name."""
        return f"hello {name}"

    @server.tool(name="files.read")
    def files_read(path: str) -> str:
        """A name with a dot, as MCP allows and OpenAI does not."""
        return f"read {path}"

    @server.tool(name=LONG)
    def long_name() -> str:
        """A name too long to offer with its prefix."""
        return "never offered"

    @server.tool()
    def fail() -> str:
        """An MCP error result."""
        raise ToolError("it broke")

    @server.tool()
    async def nap(seconds: float) -> str:
        """Answers after `seconds`."""
        await asyncio.sleep(seconds)
        return "rested"

    @server.tool()
    async def wait() -> str:
        """Never answers (it says that it started)."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    return server


@asynccontextmanager
async def connected(started: asyncio.Event | None = None) -> AsyncIterator[McpLink]:
    """A link to the server (a context, not a fixture: the SDK's task groups must be left in
    the task that entered them); `started` is set when a call of `wait` has begun."""
    server = build_server(started or asyncio.Event())
    async with create_connected_server_and_client_session(server) as session:
        yield McpLink("srv", session)


async def current(link: McpLink) -> McpLink:
    return link


def test_tool_names_fit_openais_rule() -> None:
    assert tool_name("shop_lookup_order") == "shop_lookup_order"
    assert tool_name("fs_files.read") == "fs_files_read"
    assert tool_name("fs_a/b c") == "fs_a_b_c"
    assert tool_name("s_" + "x" * 62) is not None
    assert tool_name("s_" + "x" * 63) is None


def test_tool_text_prefers_text_then_structured_content() -> None:
    blocks = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    assert tool_text(blocks, {"structured_content": {"a": 1}}) == "one\ntwo"
    assert tool_text([], {"structured_content": {"a": "é"}}) == '{"a": "é"}'
    image = {"type": "image", "base64": "AAAA", "mime_type": "image/png"}
    assert tool_text([image]) == "[image: image/png]"
    assert tool_text([{"type": "file", "url": "file:///x"}]) == "[file: file at file:///x]"
    assert tool_text([]) == "(the tool returned nothing)"
    assert tool_text("plain") == "plain"


async def test_tools_are_prefixed_and_a_name_too_long_is_left_out() -> None:
    async with connected() as link:
        listed = await link.load_tools()

        assert sorted(listed) == ["srv_fail", "srv_files_read", "srv_greet", "srv_nap", "srv_wait"]


async def test_a_server_tool_answers_with_text_and_raises_on_an_error_result() -> None:
    async with connected() as link:
        listed = await link.load_tools()
        greet = server_tool("srv_greet", listed["srv_greet"], "srv", lambda: current(link))
        read = server_tool("srv_files_read", listed["srv_files_read"], "srv", lambda: current(link))
        fail = server_tool("srv_fail", listed["srv_fail"], "srv", lambda: current(link))

        assert greet.description == "Greets someone by name."
        assert await greet.ainvoke({"name": "Ada"}) == "hello Ada"
        assert await read.ainvoke({"path": "/etc/x"}) == "read /etc/x"  # the MCP name is called
        with pytest.raises(ToolException, match="it broke"):
            await fail.ainvoke({})


async def test_a_session_lost_during_a_call_ends_the_call_at_once() -> None:
    started = asyncio.Event()
    async with connected(started) as link:
        listed = await link.load_tools()
        wait = server_tool("srv_wait", listed["srv_wait"], "srv", lambda: current(link))
        call = asyncio.create_task(wait.ainvoke({}))
        await started.wait()  # the server is running the call

        link.lose("the process exited")

        with pytest.raises(ToolUnavailableError, match="went away during the call"):
            await call
        with pytest.raises(ToolUnavailableError, match="is not connected \\(the process exited\\)"):
            await wait.ainvoke({})


async def test_a_tool_the_server_no_longer_lists_is_unavailable() -> None:
    async with connected() as link:
        listed = await link.load_tools()
        greet = server_tool("srv_greet", listed["srv_greet"], "srv", lambda: current(link))
        link.tools.pop("srv_greet")

        with pytest.raises(ToolUnavailableError, match="no longer offers"):
            await greet.ainvoke({"name": "Ada"})


async def test_a_call_cut_short_by_the_timeout_leaves_the_session_usable() -> None:
    async with connected() as link:
        listed = await link.load_tools()
        nap = server_tool("srv_nap", listed["srv_nap"], "srv", lambda: current(link))
        greet = server_tool("srv_greet", listed["srv_greet"], "srv", lambda: current(link))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # as the tools node bounds every call
                await nap.ainvoke({"seconds": 0.5})

        await asyncio.sleep(0.5)  # the server's late answer arrives; nothing signals it here
        assert await greet.ainvoke({"name": "Ada"}) == "hello Ada"
        assert not link.lost.is_set()
