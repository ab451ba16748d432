"""MCP servers' tools as server tools: a real MCP server (tests/fakes/mcp_server.py, FastMCP)
over stdio (spawned by the service) and over Streamable HTTP (a process of its own), driven
through `/v1/chat/completions` by the offline model and by a fake upstream's tool calls."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import ToolMessage

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.mcp_server import SCRIPT, McpServerProcess
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply, ToolCallSpec
from tests.helpers import thread_messages

Serve = Callable[[Settings], ServedApp]

REFERENCE = "MCP-7F3A"
"""What only the fake MCP server's `lookup_order` answers."""


def stdio_server(**env: str) -> dict[str, Any]:
    """MCP_SERVERS entry: the fake server as a child process of the service."""
    return {"command": sys.executable, "args": [str(SCRIPT)], "env": env}


@pytest.fixture
def http_server() -> Iterator[McpServerProcess]:
    """The fake server over Streamable HTTP, not started yet; stopped at the end."""
    server = McpServerProcess()
    yield server
    server.stop()


def sdk(app: ServedApp, thread: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{app.url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=60,
        default_headers={"X-Thread-Id": thread} if thread else None,
    )


def chat(app: ServedApp, text: str, *, model: str = "offline", thread: str | None = None) -> str:
    """One turn through the openai SDK; the answer's text."""
    completion = sdk(app, thread).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content or ""


def chat_streamed(app: ServedApp, text: str) -> str:
    """One streamed turn of the offline model through the openai SDK; the answer's text."""
    stream = sdk(app).chat.completions.create(
        model="offline", messages=[{"role": "user", "content": text}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def ready(app: ServedApp) -> dict[str, Any]:
    response = httpx.get(f"{app.url}/admin/ready", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_state(app: ServedApp, server: str, *states: str, timeout: float = 30.0) -> None:
    """Poll `/admin/ready` until the MCP server is in one of `states` (changed in the background).

    A lost server goes from "up" to "connecting" and "down" in turn while it is retried; a
    wait for its loss names both, since a poll can miss a short "connecting" (CI did).
    """
    deadline = time.monotonic() + timeout
    while True:
        body = ready(app)
        if body["checks"]["mcp_servers"]["servers"][server]["state"] in states:
            return
        assert time.monotonic() < deadline, f"{server} never became {states}: {body}"
        time.sleep(0.1)  # the server's state changes in a background task: nothing to await


def tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """The `role: tool` messages a provider request carried."""
    messages = (request.body or {})["messages"]
    return [m for m in messages if m["role"] == "tool"]


def offered(request: RecordedRequest) -> list[str]:
    """The names of the tools a provider request offered."""
    return [tool["function"]["name"] for tool in (request.body or {}).get("tools", [])]


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: Any) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        **extra,
    )


# --- stdio ---------------------------------------------------------------------------------


def test_the_offline_model_calls_a_stdio_servers_tool(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(mcp_servers={"shop": stdio_server(MCP_FAKE_TAG="from-env")}))

    answer = chat(app, "use shop_lookup_order order_id=42")

    assert REFERENCE in answer
    assert "Order 42" in answer
    assert "[from-env]" in answer  # the configured `env` reached the child process
    assert "Order 43:" in chat_streamed(app, "use shop_lookup_order order_id=43")
    body = ready(app)
    assert body["status"] == "ready"
    shop = body["checks"]["mcp_servers"]["servers"]["shop"]
    assert (shop["state"], shop["transport"], shop["tools"]) == ("up", "stdio", 7)
    metrics = httpx.get(f"{app.url}/metrics", timeout=10).text
    assert 'agent_tool_calls_total{outcome="ok",tool="shop_lookup_order"} 2.0' in metrics


# --- Streamable HTTP -----------------------------------------------------------------------


def test_a_model_calls_a_streamable_http_servers_tool_with_headers_from_the_environment(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = McpServerProcess(authorization="Bearer s3cret").start()
    try:
        monkeypatch.setenv("TEST_DOCS_MCP_AUTH", "Bearer s3cret")
        docs = {"url": server.url, "headers_env": {"Authorization": "TEST_DOCS_MCP_AUTH"}}
        nokey = {"url": server.url}  # the same server, without the header it requires
        app = serve(on_fake(make_settings, primary, mcp_servers={"docs": docs, "nokey": nokey}))
        primary.script(
            Reply(tool_calls=[ToolCallSpec("docs_lookup_order", {"order_id": "42"}, id="c1")]),
            Reply("Your order 42 holds 3 blue widgets."),
        )

        answer = chat(app, "what is in my order 42?", model="m")

        assert answer == "Your order 42 holds 3 blue widgets."
        first, second = primary.requests
        assert "docs_lookup_order" in offered(first)
        (result,) = tool_results(second)
        assert result["tool_call_id"] == "c1"
        assert REFERENCE in result["content"]
        assert "Order 42" in result["content"]
        servers = ready(app)["checks"]["mcp_servers"]["servers"]
        assert servers["docs"]["state"] == "up"
        assert servers["nokey"]["state"] in ("down", "connecting")
        assert "401 Unauthorized" in servers["nokey"]["error"]
        assert not [name for name in offered(first) if name.startswith("nokey_")]
    finally:
        server.stop()


def test_a_server_down_at_start_is_degraded_then_its_tools_appear_without_a_restart(
    make_settings: SettingsFactory, serve: Serve, http_server: McpServerProcess
) -> None:
    settings = make_settings(
        mcp_servers={"docs": {"url": http_server.url}},
        mcp_connect_timeout=2.0,
        mcp_retry_max_seconds=0.5,
    )
    app = serve(settings)  # nothing listens on the server's port yet

    body = ready(app)
    assert body["status"] == "degraded"
    assert "mcp-servers-down" in body["degraded"]
    docs = body["checks"]["mcp_servers"]["servers"]["docs"]
    assert docs["state"] in ("down", "connecting")
    assert docs["tools"] == 0
    assert "ConnectError" in docs["error"]
    assert REFERENCE not in chat(app, "use docs_lookup_order order_id=7")  # not offered
    metrics = httpx.get(f"{app.url}/metrics", timeout=10).text
    assert 'agent_mcp_server_up{server="docs"} 0.0' in metrics  # what an alert watches
    assert 'agent_mcp_server_tools{server="docs"} 0.0' in metrics

    http_server.start()
    wait_for_state(app, "docs", "up")

    assert REFERENCE in chat(app, "use docs_lookup_order order_id=7")
    body = ready(app)
    assert body["status"] == "ready"
    assert body["checks"]["mcp_servers"]["servers"]["docs"]["tools"] == 7
    metrics = httpx.get(f"{app.url}/metrics", timeout=10).text
    assert 'agent_mcp_server_up{server="docs"} 1.0' in metrics
    assert 'agent_mcp_server_tools{server="docs"} 7.0' in metrics
    assert 'agent_mcp_server_sessions_total{server="docs"} 1.0' in metrics


# --- a server that dies -------------------------------------------------------------------


def server_pid(answer: str) -> int:
    match = re.search(r"pid (\d+)", answer)
    assert match, answer
    return int(match.group(1))


def process_exists(pid: int) -> bool:
    """Whether the process runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_stdio_server_that_dies_mid_call_is_an_error_result_and_comes_back(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings(mcp_servers={"shop": stdio_server()})
    app = serve(settings)
    first = server_pid(chat(app, "use shop_pid", thread="crash"))

    answer = chat(app, "use shop_crash", thread="crash")  # the process exits mid-call

    assert "the MCP server 'shop' went away during the call" in answer
    messages = await thread_messages(settings, "crash")
    (result,) = [m for m in messages if isinstance(m, ToolMessage) and m.name == "shop_crash"]
    assert result.status == "error"
    # The thread goes on, and the next call finds a new process of the server.
    second = server_pid(chat(app, "use shop_pid", thread="crash"))
    assert second != first
    assert not process_exists(first)
    assert REFERENCE in chat(app, "use shop_lookup_order order_id=9", thread="crash")
    assert len(await thread_messages(settings, "crash")) == 16
    shop = ready(app)["checks"]["mcp_servers"]["servers"]["shop"]
    assert (shop["state"], shop["sessions"]) == ("up", 2)

    app.stop()  # the service ends its stdio servers when it stops
    deadline = time.monotonic() + 10
    while process_exists(second):
        assert time.monotonic() < deadline, "the MCP server outlived the service"
        await asyncio.sleep(0.05)  # another process's exit: nothing to await


def test_an_http_server_that_dies_mid_call_is_an_error_result_and_is_reconnected(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    http_server: McpServerProcess,
) -> None:
    http_server.start()
    app = serve(
        on_fake(
            make_settings,
            primary,
            mcp_servers={"docs": {"url": http_server.url}},
            mcp_ping_seconds=0.2,
            mcp_retry_max_seconds=0.5,
            tool_timeout=60,
        )
    )
    primary.script(
        Reply(tool_calls=[ToolCallSpec("docs_crash", {}, id="c1")]),
        Reply("The docs server failed."),
    )

    assert chat(app, "crash the docs server", model="m") == "The docs server failed."
    (result,) = tool_results(primary.requests[1])
    assert result["content"].startswith("Error: the MCP server 'docs' went away during the call")
    assert http_server.wait_exited() == 3
    wait_for_state(app, "docs", "connecting", "down")
    assert "mcp-servers-down" in ready(app)["degraded"]

    http_server.start()  # the same port again
    wait_for_state(app, "docs", "up")
    primary.script(
        Reply(tool_calls=[ToolCallSpec("docs_lookup_order", {"order_id": "5"}, id="c2")]),
        Reply("Order 5 is on its way."),
    )
    assert chat(app, "and order 5?", model="m") == "Order 5 is on its way."
    (result,) = tool_results(primary.requests[3])
    assert REFERENCE in result["content"]


def test_a_server_back_with_other_tools_offers_the_new_ones_and_explains_the_gone_ones(
    make_settings: SettingsFactory, serve: Serve, http_server: McpServerProcess
) -> None:
    http_server.hide = {"pid"}
    http_server.start()
    app = serve(
        make_settings(
            mcp_servers={"docs": {"url": http_server.url}},
            mcp_ping_seconds=0.2,
            mcp_retry_max_seconds=0.5,
        )
    )
    assert "pid " not in chat(app, "use docs_pid")  # not offered by this version
    assert "Order 1:" in chat(app, "use docs_lookup_order order_id=1")

    http_server.stop()
    wait_for_state(app, "docs", "connecting", "down")
    http_server.hide = {"lookup_order"}
    http_server.start()
    wait_for_state(app, "docs", "up")

    assert re.search(r"pid \d+", chat(app, "use docs_pid"))
    assert "no longer offers this tool" in chat(app, "use docs_lookup_order order_id=1")


# --- the built-in tools' path: narrowing, timeout, output cap, errors ---------------------


def test_mcp_results_errors_timeouts_and_the_output_cap_are_tool_messages(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        on_fake(
            make_settings,
            primary,
            mcp_servers={"shop": stdio_server()},
            tool_timeout=1.0,
            tool_output_max_chars=100,
        )
    )
    primary.script(
        Reply(
            tool_calls=[
                ToolCallSpec("shop_order_status", {"order_id": "42"}, id="status"),
                ToolCallSpec("shop_refuse", {"reason": "out of stock"}, id="refuse"),
                ToolCallSpec("shop_slow", {"seconds": 30}, id="slow"),
                ToolCallSpec("shop_long_text", {"chars": 500}, id="long"),
                ToolCallSpec("shop_lookup_order", {"order_id": 42}, id="bad-args"),
            ]
        ),
        Reply("Done."),
    )

    assert chat(app, "check my order", model="m") == "Done."

    results = {m["tool_call_id"]: m["content"] for m in tool_results(primary.requests[1])}
    assert json.loads(results["status"]) == {"order_id": "42", "status": "shipped", "items": 3}
    assert results["refuse"].startswith("Error: ")  # the MCP result had `isError: true`
    assert results["refuse"].endswith("refused: out of stock")
    assert results["slow"] == "Error: the tool did not finish within 1 seconds"
    assert results["long"].startswith("0123456789" * 10 + "\n[output truncated: 400 more")
    assert results["bad-args"].startswith("Error: ")
    assert "valid string" in results["bad-args"]  # the server's own validation message
    # The server survived all of it.
    assert ready(app)["checks"]["mcp_servers"]["servers"]["shop"]["state"] == "up"


def test_mcp_tools_are_narrowed_by_relevance_like_the_built_in_ones(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        on_fake(make_settings, primary, mcp_servers={"shop": stdio_server()}, max_tools_offered=3)
    )
    primary.script(Reply("Fine."))

    chat(app, "please look up the shipping of my shop order", model="m")

    tools = offered(primary.requests[0])
    assert len(tools) == 3
    assert tools[0] == "shop_lookup_order"
