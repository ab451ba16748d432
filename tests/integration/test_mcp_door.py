"""The /mcp door as MCP clients use it: the `mcp` SDK's client over real HTTP (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_mcp_adapters.client import MultiServerMCPClient
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from server.auth import digest, key_id
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply
from tests.helpers import thread_messages

Serve = Callable[[Settings], ServedApp]

KEY = "sk-mcp"
OTHER_KEY = "sk-other"
CATALOGUE = ["calculator", "clock", "searxng_search", "echo", "knowledge_search"]
"""Tools the catalogue has today: the door lists them all, and any tool added later too."""


def keyed(make_settings: SettingsFactory, **extra: Any) -> Settings:
    return make_settings(api_keys=[KEY, OTHER_KEY], **extra)


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: Any) -> Settings:
    return keyed(
        make_settings,
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        **extra,
    )


def stored(thread_id: str, key: str = KEY) -> str:
    """The id a key's thread is checkpointed under (`server.turns.threads.scoped_thread_id`)."""
    return f"{key_id(digest(key))}:{thread_id}"


@contextlib.asynccontextmanager
async def mcp(
    app: ServedApp, key: str | None = KEY, path: str = "/mcp"
) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session on the door, sending `key` as its bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=60)) as http,
        streamable_http_client(f"{app.url}{path}", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    return "".join(part.text for part in result.content if isinstance(part, types.TextContent))


async def chat(session: ClientSession, message: str, **arguments: str) -> dict[str, Any]:
    """A `chat` call that must succeed: its structured result."""
    result = await session.call_tool("chat", {"message": message, **arguments})
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    return result.structuredContent


async def test_tools_are_chat_and_the_catalogue_with_their_json_schemas(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    async with mcp(app) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}

    names = list(listed)
    assert names[0] == "chat"
    assert set(CATALOGUE) <= set(names[1:])  # a new catalogue tool needs no edit here
    assert len(names) == len(set(names))
    chat_tool = listed["chat"]
    assert chat_tool.inputSchema["required"] == ["message"]
    assert set(chat_tool.inputSchema["properties"]) == {"message", "thread_id", "model"}
    assert chat_tool.outputSchema is not None
    assert set(chat_tool.outputSchema["required"]) == {"answer", "thread_id", "model"}
    calculator = listed["calculator"]
    assert calculator.inputSchema["type"] == "object"
    assert calculator.inputSchema["required"] == ["expression"]
    assert calculator.inputSchema["properties"]["expression"]["type"] == "string"
    assert calculator.description
    assert "arithmetic" in calculator.description.lower()
    assert "timezone" in listed["clock"].inputSchema["properties"]


async def test_a_plugin_tool_is_listed_and_called_as_itself(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings, load_plugin_tools=True))  # examples/agent-tool-dice
    async with mcp(app) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        rolled = await session.call_tool("roll_dice", {"count": 2, "sides": 6, "seed": 7})
        out_of_range = await session.call_tool("roll_dice", {"count": 0})

    assert set(listed["roll_dice"].inputSchema["properties"]) == {"count", "sides", "seed"}
    assert not rolled.isError
    assert text_of(rolled).startswith("Rolled 2d6: ")
    assert out_of_range.isError  # the plugin's ToolException, as the graph reports it
    assert "count must be between 1 and" in text_of(out_of_range)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """Keyed settings on each checkpointer; PostgreSQL gets a fresh database."""
    if request.param == "postgres":
        return keyed(make_settings, database_url=request.getfixturevalue("postgres_url"))
    return keyed(make_settings)


async def test_chat_twice_on_one_thread_the_second_answer_uses_the_first(
    store_settings: Settings, serve: Serve
) -> None:
    app = serve(store_settings)
    async with mcp(app) as session:
        first = await chat(session, "echo pineapple")
        second = await chat(session, "what did I say?", thread_id=first["thread_id"])

    assert first["answer"] == "pineapple"
    assert first["model"] == "offline"
    assert first["provider"] == "offline"
    assert second["thread_id"] == first["thread_id"]
    assert second["answer"] == 'Earlier you said: "echo pineapple"'
    # One thread, in the key's namespace, holding both turns (tool call and result included).
    messages = await thread_messages(store_settings, stored(first["thread_id"]))
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai", "human", "ai"]


async def test_the_result_text_carries_the_thread_id_for_clients_that_read_only_text(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    async with mcp(app) as session:
        result = await session.call_tool("chat", {"message": "echo kiwi"})

    assert result.structuredContent is not None
    assert f'"thread_id": "{result.structuredContent["thread_id"]}"' in text_of(result)
    assert '"answer": "kiwi"' in text_of(result)


async def test_without_a_thread_id_each_chat_starts_a_new_thread(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    async with mcp(app) as session:
        first = await chat(session, "echo pineapple")
        fresh = await chat(session, "what did I say?")

    assert fresh["thread_id"] != first["thread_id"]
    assert fresh["answer"].startswith("This is the first message of our conversation")


async def test_an_mcp_thread_continues_on_v1_with_x_thread_id_and_the_same_key(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    async with mcp(app) as session:
        started = await chat(session, "echo pineapple", thread_id="fruit")
    assert started["thread_id"] == "fruit"

    def v1(key: str) -> str:
        response = httpx.post(
            f"{app.url}/v1/chat/completions",
            json={"model": "offline", "messages": [{"role": "user", "content": "what did I say?"}]},
            headers={"Authorization": f"Bearer {key}", "X-Thread-Id": "fruit"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["choices"][0]["message"]["content"])

    assert v1(KEY) == 'Earlier you said: "echo pineapple"'
    # Another key naming the same thread id has a thread of its own.
    assert v1(OTHER_KEY).startswith("This is the first message of our conversation")
    # And the MCP door sees the turn /v1 added.
    async with mcp(app) as session:
        again = await chat(session, "what did I say?", thread_id="fruit")
    assert again["answer"] == 'Earlier you said: "echo pineapple"; "what did I say?"'


async def test_langchain_mcp_adapters_use_the_agent_with_memory(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    """Another client, configured the way MCP clients are (a URL and a header)."""
    app = serve(keyed(make_settings))
    client = MultiServerMCPClient(
        {
            "agent": {
                "transport": "streamable_http",
                "url": f"{app.url}/mcp",
                "headers": {"Authorization": f"Bearer {KEY}"},
            }
        }
    )
    tools = {tool.name: tool for tool in await client.get_tools()}
    assert next(iter(tools)) == "chat"
    assert set(CATALOGUE) <= set(tools)

    await tools["chat"].ainvoke({"message": "echo pineapple", "thread_id": "lc"})
    second = await tools["chat"].ainvoke({"message": "what did I say?", "thread_id": "lc"})

    # What a LangChain model reads of the result: its text, the JSON of the structure.
    text = "".join(part["text"] for part in second if part.get("type") == "text")
    assert json.loads(text)["answer"] == 'Earlier you said: "echo pineapple"'


async def test_a_catalogue_tool_is_called_directly_with_the_graphs_policy(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings, tool_output_max_chars=100))
    async with mcp(app) as session:
        product = await session.call_tool("calculator", {"expression": "17*23"})
        missing = await session.call_tool("calculator", {"formula": "17*23"})
        refused = await session.call_tool("calculator", {"expression": "2 ** 10 ** 10"})
        long = await session.call_tool("echo", {"text": "x" * 300})
        unknown = await session.call_tool("teleport", {})

    assert not product.isError
    assert text_of(product) == "391"
    assert missing.isError
    assert "expression" in text_of(missing)
    assert refused.isError  # the calculator's own refusal (its exponent bound)
    assert text_of(refused).startswith("Error: ")
    assert not long.isError  # TOOL_OUTPUT_MAX_CHARS, as in the graph
    assert text_of(long) == "x" * 100 + "\n[output truncated: 200 more characters]"
    assert unknown.isError
    assert "teleport" in text_of(unknown)


async def test_missing_and_wrong_keys_are_refused_with_401_before_mcp(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": types.LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    for headers, code in [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key"),
    ]:
        response = httpx.post(f"{app.url}/mcp", json=initialize, headers={**accept, **headers})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == (
            f'Bearer realm="agent-service", error="invalid_token", '
            f'error_description="{response.json()["error"]["message"]}"'
        )
        error = response.json()["error"]
        assert error["type"] == "authentication_error"
        assert error["code"] == code

    # The SDK's client raises the HTTP error out of its task groups.
    with pytest.raises(BaseExceptionGroup) as refused:
        async with mcp(app, key="sk-wrong"):
            pass
    matched, _ = refused.value.split(httpx.HTTPStatusError)
    assert matched is not None
    statuses = {leaf.response.status_code for leaf in _leaves(matched)}
    assert statuses == {401}


def test_the_door_takes_post_only(make_settings: SettingsFactory, serve: Serve) -> None:
    """No standalone stream (the server sends nothing unasked) and no session to delete."""
    app = serve(keyed(make_settings))
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "text/event-stream"}
    for method in ("GET", "DELETE"):
        response = httpx.request(method, f"{app.url}/mcp", headers=headers, timeout=10)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["error"]["message"] == "The MCP endpoint takes POST only."


def _leaves(group: BaseExceptionGroup[httpx.HTTPStatusError]) -> list[httpx.HTTPStatusError]:
    leaves: list[httpx.HTTPStatusError] = []
    for inner in group.exceptions:
        leaves.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return leaves


async def test_an_unknown_model_or_a_bad_thread_id_is_a_tool_error_and_the_session_goes_on(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    async with mcp(app) as session:
        refused = await session.call_tool(
            "chat", {"message": "hello", "thread_id": "t", "model": "nope"}
        )
        too_long = await session.call_tool("chat", {"message": "hello", "thread_id": "t" * 300})
        after = await chat(session, "echo still here", thread_id="t")

    assert too_long.isError
    assert text_of(too_long).startswith("Error (invalid_thread_id): thread_id is longer than")
    assert refused.isError
    assert text_of(refused).startswith("Error (model_not_found): The model 'nope' does not exist")
    assert after["answer"] == "still here"
    # Nothing of the refused call reached the thread.
    messages = await thread_messages(keyed(make_settings), stored("t"))
    assert [m.content for m in messages if m.type == "human"] == ["echo still here"]


async def test_every_provider_failing_is_a_tool_error(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary, provider_max_retries=0))
    primary.default = Fault.server_error("upstream down")
    async with mcp(app) as session:
        failed = await session.call_tool("chat", {"message": "hello", "model": "m"})

    assert failed.isError
    assert text_of(failed).startswith("Error (all_providers_failed): ")
    assert primary.requests  # the provider was asked


async def test_a_busy_thread_is_a_tool_error_and_leaving_frees_it(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Fault.hang(30), Reply("after"))

    async def hold_the_thread() -> None:
        async with mcp(app) as session:
            await session.call_tool("chat", {"message": "long", "thread_id": "busy", "model": "m"})

    holding = asyncio.create_task(hold_the_thread())
    # The first turn is with the provider (which hangs): the thread is taken.
    for _ in range(200):
        if primary.requests:
            break
        await asyncio.sleep(0.05)
    assert primary.requests
    async with mcp(app) as session:
        busy = await session.call_tool("chat", {"message": "b", "thread_id": "busy", "model": "m"})
    assert busy.isError
    assert text_of(busy).startswith("Error (thread_busy): ")

    holding.cancel()  # the first client leaves: its connection closes
    with contextlib.suppress(asyncio.CancelledError):
        await holding
    # Leaving cancels the run and its provider call, and frees the thread.
    assert await asyncio.to_thread(primary.wait_for_disconnects, 1, 5.0)
    for _ in range(100):
        async with mcp(app) as session:
            result = await session.call_tool(
                "chat", {"message": "c", "thread_id": "busy", "model": "m"}
            )
        if not result.isError or "thread_busy" not in text_of(result):
            break
        await asyncio.sleep(0.05)  # the cancelled run is still releasing the lock
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    assert result.structuredContent["answer"] == "after"


async def test_the_rate_limit_applies_to_tool_calls(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings, rate_limit_rpm=1))
    async with mcp(app) as session:
        results = [await session.call_tool("chat", {"message": "echo hi"}) for _ in range(3)]
        listed = await session.list_tools()  # listing is not a call
        product = await session.call_tool("calculator", {"expression": "1+1"})

    assert not results[0].isError
    refused = [result for result in results if result.isError]
    assert refused  # at most two fit in a window of one per minute, even across a boundary
    assert all(text_of(r).startswith("Error (rate_limit_exceeded): ") for r in refused)
    assert listed.tools
    assert product.isError  # a call of any tool counts
    assert text_of(product).startswith("Error (rate_limit_exceeded): ")


async def test_a_spent_monthly_budget_refuses_chat(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings, monthly_token_budget=10))
    async with mcp(app) as session:
        first = await session.call_tool("chat", {"message": "echo hi"})  # more than 10 tokens
        second = await session.call_tool("chat", {"message": "echo again"})

    assert not first.isError  # within the budget when it started
    assert second.isError
    assert text_of(second).startswith("Error (insufficient_quota): You exceeded your current quota")


async def test_mcp_slash_is_the_same_door_and_requests_are_counted_under_mcp(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(keyed(make_settings))
    async with mcp(app, path="/mcp/") as session:
        product = await session.call_tool("calculator", {"expression": "6*7"})
    assert text_of(product) == "42"

    scraped = httpx.get(f"{app.url}/metrics").text
    counted = {
        (sample.labels["method"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "agent_http_requests_total" and sample.labels.get("route") == "/mcp"
    }
    assert counted[("POST", "200")] >= 2  # initialize, the call (notifications are 202)
    tool_calls = [
        sample
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "agent_tool_calls_total" and sample.labels.get("tool") == "calculator"
    ]
    assert [s.value for s in tool_calls if s.labels.get("outcome") == "ok"] == [1.0]


_LAZY_CHILD = """
import json, sys
from fastapi.testclient import TestClient
from server.app import create_app

with TestClient(create_app()) as client:
    answered = client.post(
        "/v1/chat/completions",
        json={"model": "offline", "messages": [{"role": "user", "content": "echo hi"}]},
    ).status_code
    before = "mcp" in sys.modules
    initialized = client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"}}},
        headers={"Accept": "application/json, text/event-stream"},
    ).status_code
print(json.dumps({"answered": answered, "before": before, "initialized": initialized,
                  "after": "mcp" in sys.modules}))
"""


def test_the_mcp_package_is_imported_on_the_first_mcp_request_not_at_start(
    tmp_path: Path,
) -> None:
    """`mcp` costs about half a second of imports: a service nobody reaches over MCP skips it."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "SQLITE_PATH": str(tmp_path / "checkpoints.sqlite"),
        "LOAD_PLUGIN_TOOLS": "false",
        "LOG_LEVEL": "warning",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", _LAZY_CHILD],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result == {"answered": 200, "before": False, "initialized": 200, "after": True}
