"""Thread ids on every door, over real HTTP: one rule, checked before anything is stored.

Printable Unicode is a thread id (`日本語`, an emoji): it is stored as sent and echoed in
`X-Thread-Id` percent-encoded. Control and format characters (a line feed, NUL, U+202E), an
id over 256 characters, are a 400 `invalid_thread_id` naming where the id came from (a tool
error on `/mcp`), and nothing is stored. An empty id names no thread.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, unquote

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.helpers import thread_messages

Serve = Callable[[Settings], ServedApp]

UNICODE_IDS = ["日本語", "🙂", "👨\u200d👩\u200d👧 family", "می\u200cخواهم", "naïve café"]  # noqa: RUF001
"""Valid: letters of any script, emoji (with their zero-width joiner), the space."""

REFUSED_IDS = ["a\u202eb", "a\nb", "tab\there", "a\u2028b", "\ufeffbom", "x" * 257]
"""Invalid: a bidi override, a line feed, a tab, a line separator, a BOM, too long."""

EMPTY_IDS = ["", "   ", "\x00"]
"""No thread: empty, blank, or only a NUL (`server.edge.sanitize` drops a NUL from every body)."""


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


async def stored_threads(settings: Settings) -> set[str]:
    """Every thread id the checkpointer holds."""
    async with open_checkpointer(settings) as saver:
        return {str(item.config["configurable"]["thread_id"]) async for item in saver.alist(None)}


def sdk(app: ServedApp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)


def chat_body(thread_id: str, text: str = "echo hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": "offline",
        "messages": [{"role": "user", "content": text}],
        "metadata": {"thread_id": thread_id},
        **extra,
    }


def assert_refused(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "invalid_thread_id",
        param,
        "invalid_request_error",
    )
    assert "x-thread-id" not in response.headers


# --- /v1/chat/completions --------------------------------------------------------------------


@pytest.mark.parametrize("thread_id", UNICODE_IDS)
async def test_a_unicode_thread_id_is_stored_as_sent_and_echoed_percent_encoded(
    settings: Settings, serve: Serve, thread_id: str
) -> None:
    app = serve(settings)

    with sdk(app) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="offline",
            messages=[{"role": "user", "content": "echo first"}],
            metadata={"thread_id": thread_id},
        )

    assert raw.http_response.status_code == 200
    echoed = raw.headers["x-thread-id"]
    assert echoed.isascii()
    assert echoed == quote(thread_id, safe=" !\"#$&'()*+,/:;<=>?@[\\]^`{|}")
    assert unquote(echoed) == thread_id
    assert raw.parse().choices[0].message.content == "first"
    assert await stored_threads(settings) == {thread_id}

    # The echo, sent back in the header, names the same thread (and only the new message).
    again = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "offline", "messages": [{"role": "user", "content": "echo second"}]},
        headers={"X-Thread-Id": echoed},
    )
    assert again.status_code == 200, again.text
    assert again.headers["x-thread-id"] == echoed
    humans = [m.content for m in await thread_messages(settings, thread_id) if m.type == "human"]
    assert humans == ["echo first", "echo second"]


async def test_a_header_may_carry_the_id_as_raw_utf8_too(settings: Settings, serve: Serve) -> None:
    app = serve(settings)
    for header in ("X-Thread-Id", "X-OpenWebUI-Chat-Id"):
        response = httpx.post(
            f"{app.url}/v1/chat/completions",
            json={"model": "offline", "messages": [{"role": "user", "content": "echo hi"}]},
            headers={header.encode(): "日本語".encode()},
        )
        assert response.status_code == 200, response.text
        assert unquote(response.headers["x-thread-id"]) == "日本語"
    assert await stored_threads(settings) == {"日本語"}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("thread_id", REFUSED_IDS)
async def test_a_refused_id_in_metadata_is_a_400_and_nothing_is_stored(
    settings: Settings, serve: Serve, thread_id: str, stream: bool
) -> None:
    app = serve(settings)

    with sdk(app) as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="offline",
            messages=[{"role": "user", "content": "echo hi"}],
            metadata={"thread_id": thread_id},
            stream=stream,
        )

    assert refused.value.status_code == 400
    assert refused.value.code == "invalid_thread_id"
    assert refused.value.param == "metadata.thread_id"
    assert "x-thread-id" not in refused.value.response.headers
    assert await stored_threads(settings) == set()
    # The service is fine afterwards: the connection was answered, not dropped.
    assert httpx.get(f"{app.url}/health").status_code == 200


@pytest.mark.parametrize("header", ["X-Thread-Id", "X-OpenWebUI-Chat-Id"])
@pytest.mark.parametrize(
    "value",
    [
        quote("a\u202eb"),
        "a%0Ab",
        "a%00b",
        "a%FFb",  # percent-encoded bytes that are not UTF-8
        "a\u202eb".encode(),  # raw UTF-8 bytes of a bidi override
        b"caf\xe9",  # latin-1 bytes, not UTF-8
        "x" * 257,
    ],
)
async def test_a_refused_id_in_a_header_is_a_400_naming_the_header(
    settings: Settings, serve: Serve, header: str, value: str | bytes
) -> None:
    app = serve(settings)
    raw = value if isinstance(value, bytes) else value.encode("ascii")  # as httpx encodes a str

    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "offline", "messages": [{"role": "user", "content": "echo hi"}]},
        headers={header.encode(): raw},
    )

    assert_refused(response, header)
    assert await stored_threads(settings) == set()


async def test_a_nul_in_the_body_is_dropped_as_everywhere_and_the_echo_says_so(
    settings: Settings, serve: Serve
) -> None:
    app = serve(settings)

    response = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body("a\x00b"))

    assert response.status_code == 200, response.text
    assert response.headers["x-thread-id"] == "ab"
    assert await stored_threads(settings) == {"ab"}


@pytest.mark.parametrize("thread_id", EMPTY_IDS)
async def test_an_empty_id_names_no_thread(
    settings: Settings, serve: Serve, thread_id: str
) -> None:
    app = serve(settings)

    response = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(thread_id))

    assert response.status_code == 200, response.text
    assert "x-thread-id" not in response.headers
    assert await stored_threads(settings) == set()


# --- /v1/responses: threads are named by response ids -----------------------------------------


@pytest.mark.parametrize("thread_id", ["日本語", *REFUSED_IDS])
async def test_the_responses_door_names_threads_by_response_id_only(
    settings: Settings, serve: Serve, thread_id: str
) -> None:
    app = serve(settings)

    with sdk(app) as client:
        raw = client.responses.with_raw_response.create(
            model="offline", input="echo hi", metadata={"thread_id": thread_id[:512]}
        )
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="offline", input="echo hi", conversation=thread_id)

    response = raw.parse()
    assert raw.headers["x-thread-id"] == response.id  # ASCII, the server's own
    assert response.metadata == {"thread_id": thread_id[:512]}
    assert refused.value.param == "conversation"
    assert await stored_threads(settings) == {response.id}  # nothing of the refused one


# --- /mcp: the chat tool's thread_id ----------------------------------------------------------


@contextlib.asynccontextmanager
async def mcp(app: ServedApp) -> AsyncIterator[ClientSession]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as http,
        streamable_http_client(f"{app.url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    return "".join(part.text for part in result.content if isinstance(part, types.TextContent))


async def test_the_mcp_chat_tool_takes_unicode_ids_and_refuses_the_others(
    settings: Settings, serve: Serve
) -> None:
    app = serve(settings)
    async with mcp(app) as session:
        refused = [
            await session.call_tool("chat", {"message": "echo hi", "thread_id": thread_id})
            for thread_id in REFUSED_IDS
        ]
        assert await stored_threads(settings) == set()
        named = [
            await session.call_tool("chat", {"message": "echo hi", "thread_id": thread_id})
            for thread_id in UNICODE_IDS
        ]

    for result in refused:
        assert result.isError
        assert text_of(result).startswith("Error (invalid_thread_id): thread_id ")
    for thread_id, result in zip(UNICODE_IDS, named, strict=True):
        assert not result.isError, text_of(result)
        assert result.structuredContent is not None
        assert result.structuredContent["thread_id"] == thread_id
        assert json.loads(text_of(result))["thread_id"] == thread_id
    assert await stored_threads(settings) == set(UNICODE_IDS)


# --- /agent: configurable.thread_id, and the thread routes' path -----------------------------


def agent_body(endpoint: str, thread_id: str) -> dict[str, Any]:
    turn = {"messages": [{"type": "human", "content": "echo hi"}]}
    config = {"configurable": {"thread_id": thread_id}}
    if endpoint == "batch":
        return {"inputs": [turn], "config": config}
    return {"input": turn, "config": config}


@pytest.mark.parametrize("endpoint", ["invoke", "batch", "stream", "stream_events", "stream_log"])
async def test_the_agent_door_refuses_a_bad_configured_id_before_running(
    settings: Settings, serve: Serve, endpoint: str
) -> None:
    app = serve(settings)

    for thread_id in REFUSED_IDS:
        response = httpx.post(f"{app.url}/agent/{endpoint}", json=agent_body(endpoint, thread_id))
        assert_refused(response, "configurable.thread_id")
    assert await stored_threads(settings) == set()

    for thread_id in UNICODE_IDS:
        response = httpx.post(f"{app.url}/agent/{endpoint}", json=agent_body(endpoint, thread_id))
        assert response.status_code == 200, response.text
    assert await stored_threads(settings) == set(UNICODE_IDS)


async def test_the_agent_door_reads_the_header_as_v1_does(settings: Settings, serve: Serve) -> None:
    app = serve(settings)
    body = {"input": {"messages": [{"type": "human", "content": "echo hi"}]}}

    refused = httpx.post(f"{app.url}/agent/invoke", json=body, headers={"X-Thread-Id": "a%0Ab"})
    named = httpx.post(
        f"{app.url}/agent/invoke", json=body, headers={"X-Thread-Id": quote("日本語")}
    )

    assert_refused(refused, "X-Thread-Id")
    assert named.status_code == 200, named.text
    stored = await thread_messages(settings, "日本語")
    assert [m.content for m in stored if isinstance(m, HumanMessage)] == ["echo hi"]


async def test_the_thread_routes_read_unicode_ids_and_refuse_the_others(
    settings: Settings, serve: Serve
) -> None:
    app = serve(settings)
    with sdk(app) as client:
        client.chat.completions.create(
            model="offline",
            messages=[{"role": "user", "content": "echo hi"}],
            metadata={"thread_id": "日本語 🙂"},
        )
    path = quote("日本語 🙂", safe="")

    state = httpx.get(f"{app.url}/agent/threads/{path}/state")
    history = httpx.get(f"{app.url}/agent/threads/{path}/history")
    page = httpx.get(f"{app.url}/agent/inspect/threads/{path}")

    assert state.status_code == 200
    assert state.json()["thread_id"] == "日本語 🙂"
    assert history.status_code == 200
    assert history.json()["checkpoints"]
    assert page.status_code == 200
    assert "日本語 🙂" in page.text
    for thread_id in ["a\u202eb", "a\nb", "x" * 257]:
        path = quote(thread_id, safe="")
        for route in ("state", "history"):
            assert_refused(httpx.get(f"{app.url}/agent/threads/{path}/{route}"), "thread_id")
        assert httpx.get(f"{app.url}/agent/inspect/threads/{path}").status_code == 404
