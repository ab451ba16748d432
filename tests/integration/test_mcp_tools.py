"""MCP servers' tools as server tools: a real MCP server (tests/fakes/mcp_server.py, FastMCP)
over stdio (spawned by the service) and over Streamable HTTP (a process of its own), driven
through `/v1/chat/completions` by the offline model and by a fake upstream's tool calls."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.mcp_server import SCRIPT, McpServerProcess
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply, ToolCallSpec

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


def chat(app: ServedApp, text: str, *, model: str = "offline", thread: str | None = None) -> str:
    """One turn through the openai SDK; the answer's text."""
    client = openai.OpenAI(
        base_url=f"{app.url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=60,
        default_headers={"X-Thread-Id": thread} if thread else None,
    )
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content or ""


def ready(app: ServedApp) -> dict[str, Any]:
    response = httpx.get(f"{app.url}/ready", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_state(app: ServedApp, server: str, state: str, timeout: float = 30.0) -> None:
    """Poll `/ready` until the MCP server is in `state` (it changes in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        body = ready(app)
        if body["checks"]["mcp_servers"]["servers"][server]["state"] == state:
            return
        assert time.monotonic() < deadline, f"{server} never became {state}: {body}"
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
    body = ready(app)
    assert body["status"] == "ready"
    shop = body["checks"]["mcp_servers"]["servers"]["shop"]
    assert (shop["state"], shop["transport"], shop["tools"]) == ("up", "stdio", 6)


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
        app = serve(on_fake(make_settings, primary, mcp_servers={"docs": docs}))
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
    finally:
        server.stop()
