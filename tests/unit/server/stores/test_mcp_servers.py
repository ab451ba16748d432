"""MCP_SERVERS: its validation, the connections it makes, and `server.stores.mcp_servers` at
start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import pytest
from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from graph.errors import ToolUnavailableError
from nodes.tools import ToolRegistry
from server.settings import McpHttpServer, McpStdioServer, Settings
from server.stores.mcp_servers import McpServers, connection_of, open_mcp_servers
from tests.conftest import SettingsFactory
from tests.fakes.mcp_server import SCRIPT


def test_mcp_servers_are_read_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MCP_SERVERS",
        '{"shop": {"command": "uvx", "args": ["shop-mcp"], "env": {"SHOP": "1"}},'
        ' "docs": {"url": "https://docs.example/mcp", "headers": {"X-Team": "a"}}}',
    )
    settings = Settings(_env_file=None)

    assert settings.mcp_servers == {
        "shop": McpStdioServer(command="uvx", args=["shop-mcp"], env={"SHOP": "1"}),
        "docs": McpHttpServer(url="https://docs.example/mcp", headers={"X-Team": "a"}),
    }


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ({"my.shop": {"command": "x"}}, "'my.shop': a server name prefixes its tools' names"),
        ({"s" * 63: {"command": "x"}}, "1 to 62 characters"),
        ({"shop": {"cmd": "x"}}, 'an MCP server is {"command"'),
        ({"shop": {"command": "x", "url": "http://h/mcp"}}, "Extra inputs are not permitted"),
        ({"docs": {"url": "ftp://h/mcp"}}, "String should match pattern"),
        ({"shop": {"command": ""}}, "at least 1 character"),
    ],
)
def test_a_wrong_mcp_server_is_refused_with_a_clear_error(
    servers: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as error:
        Settings(_env_file=None, mcp_servers=servers)
    assert "mcp_servers" in str(error.value)


def test_header_values_can_come_from_variables_named_in_headers_env(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MCP_TOKEN", "Bearer abc")
    settings = make_settings()
    spec = McpHttpServer(
        url="http://127.0.0.1:1/mcp",
        headers={"X-Team": "a"},
        headers_env={"Authorization": "TEST_MCP_TOKEN"},
    )

    connection = connection_of(spec, settings)

    assert connection["transport"] == "streamable_http"
    assert connection.get("headers") == {"X-Team": "a", "Authorization": "Bearer abc"}
    monkeypatch.delenv("TEST_MCP_TOKEN")
    with pytest.raises(ValueError, match="names the variable TEST_MCP_TOKEN, which is not set"):
        connection_of(spec, settings)


async def test_a_server_that_cannot_start_is_down_and_its_calls_fail_at_once(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        mcp_servers={"gone": {"command": "/nonexistent/mcp-server"}}, mcp_retry_max_seconds=60
    )
    with caplog.at_level(logging.WARNING, logger="server.stores.mcp_servers"):
        async with open_mcp_servers(settings) as servers:
            assert servers is not None
            status = servers.status()
            gone = servers.servers["gone"]
            with pytest.raises(ToolUnavailableError, match="'gone' is unreachable"):
                await gone.current_link()

    assert status["ok"] is False
    assert status["servers"]["gone"]["state"] == "down"
    assert "FileNotFoundError" in status["servers"]["gone"]["error"]
    assert "MCP server 'gone' is unreachable" in caplog.text


async def test_an_mcp_tool_never_takes_the_name_of_another_tool(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def mine() -> str:
        return "the plugin's"

    plugin = StructuredTool.from_function(coroutine=mine, name="shop_pid", description="taken")
    registry = ToolRegistry([plugin])
    settings = make_settings(
        mcp_servers={"shop": {"command": sys.executable, "args": [str(SCRIPT)]}}
    )
    async with open_mcp_servers(settings) as servers:
        assert servers is not None
        servers.bind(registry)

        assert registry.get("shop_pid") is plugin
        assert "shop_lookup_order" in registry
        assert "shop_pid" not in servers.servers["shop"].tools
        assert await registry.tools(["shop_lookup_order"])[0].ainvoke({"order_id": "1"})
    assert "tool 'shop_pid' is left out: the name is taken" in caplog.text


async def test_no_mcp_servers_opens_nothing(make_settings: SettingsFactory) -> None:
    async with open_mcp_servers(make_settings()) as servers:
        assert servers is None


async def test_closing_ends_a_task_that_swallowed_its_first_cancellation() -> None:
    """The SDK's anyio task groups can swallow a cancellation; shutdown must not hang on it."""
    stopped = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)  # the first cancellation is lost here
        try:
            await asyncio.Event().wait()  # until cancelled again
        finally:
            stopped.set()

    servers = McpServers({}, connect_timeout=1, ping_seconds=1, retry_max_seconds=1)
    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # let it start
    servers._tasks.append(task)
    async with asyncio.timeout(10):  # cancelled once only, it would wait forever
        await servers.aclose()
    assert stopped.is_set()
    assert task.done()
