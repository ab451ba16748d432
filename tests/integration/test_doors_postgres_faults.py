"""The Responses and MCP doors when PostgreSQL restarts or is down (a private cluster).

The same contract as `/v1` (`test_postgres_resilience.py`): the first turn after a restart
succeeds and sees the conversation from before it; while the database is down a turn is a
503 to retry (an MCP tool error on `/mcp`), never a 500; and it works again once it is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import openai
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.postgres_cluster import PostgresCluster
from tests.fakes.server_thread import ServedApp

pytestmark = pytest.mark.postgres

Serve = Callable[[Settings], ServedApp]


@pytest.fixture
def sdk() -> Iterator[list[openai.OpenAI]]:
    made: list[openai.OpenAI] = []
    yield made
    for client in made:
        client.close()


def responses_client(url: str, made: list[openai.OpenAI]) -> openai.OpenAI:
    """The SDK without retries: a 500 must show, not be retried away."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
    made.append(client)
    return client


@contextlib.asynccontextmanager
async def mcp(url: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def chat(url: str, message: str, thread_id: str) -> tuple[str, bool]:
    async with mcp(url) as session:
        result = await session.call_tool("chat", {"message": message, "thread_id": thread_id})
    text = result.structuredContent["answer"] if result.structuredContent else ""
    if result.isError:
        text = " ".join(getattr(block, "text", "") for block in result.content)
    return text, result.isError


async def test_after_a_restart_both_doors_continue_their_conversations(
    postgres_cluster: PostgresCluster,
    make_settings: SettingsFactory,
    serve: Serve,
    sdk: list[openai.OpenAI],
) -> None:
    app = serve(make_settings(database_url=postgres_cluster.url))
    client = responses_client(app.url, sdk)
    first = client.responses.create(model="offline", input="echo pineapple")
    assert (await chat(app.url, "echo mango", "mcp-thread")) == ("mango", False)

    postgres_cluster.restart()  # every pooled connection is now dead

    later = client.responses.create(
        model="offline", input="What did I say?", previous_response_id=first.id
    )
    assert later.output_text == 'Earlier you said: "echo pineapple"'
    assert client.responses.retrieve(later.id).output_text == later.output_text
    answer, failed = await chat(app.url, "What did I say?", "mcp-thread")
    assert (answer, failed) == ('Earlier you said: "echo mango"', False)


async def test_while_postgres_is_down_a_turn_is_a_503_or_a_tool_error_then_works_again(
    postgres_cluster: PostgresCluster,
    make_settings: SettingsFactory,
    serve: Serve,
    sdk: list[openai.OpenAI],
) -> None:
    settings = make_settings(database_url=postgres_cluster.url, database_pool_timeout=2)
    app = serve(settings)
    client = responses_client(app.url, sdk)
    first = client.responses.create(model="offline", input="echo pineapple")
    assert (await chat(app.url, "echo mango", "mcp-thread"))[1] is False

    postgres_cluster.halt()
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            client.responses.create(
                model="offline", input="anyone there?", previous_response_id=first.id
            )
        assert caught.value.status_code == 503, caught.value.response.text
        assert caught.value.code == "checkpointer_unavailable"
        assert caught.value.response.headers["retry-after"]
        with pytest.raises(openai.APIStatusError) as fresh:
            client.responses.create(model="offline", input="a new conversation")
        assert fresh.value.status_code == 503
        text, failed = await chat(app.url, "anyone there?", "mcp-thread")
        assert failed
        assert "checkpointer_unavailable" in text
    finally:
        postgres_cluster.resume()

    later = client.responses.create(
        model="offline", input="What did I say?", previous_response_id=first.id
    )
    assert later.output_text == 'Earlier you said: "echo pineapple"'
    answer, failed = await chat(app.url, "What did I say?", "mcp-thread")
    assert (answer, failed) == ('Earlier you said: "echo mango"', False)
