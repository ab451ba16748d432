"""PostgreSQL going away and coming back: a restart, a killed session, and what we show of it.

The restarts happen on a private cluster (`postgres_cluster`), never on the shared server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import dict_row

from server.settings import Settings
from server.stores import checkpointer as checkpointer_module
from server.stores.checkpointer import open_checkpointer
from tests.conftest import SettingsFactory
from tests.fakes.postgres_cluster import PostgresCluster
from tests.fakes.server_thread import ServedApp
from tests.fakes.service_process import ServiceProcess

Serve = Callable[[Settings], ServedApp]
ServeProcess = Callable[[Settings], ServiceProcess]


@pytest.fixture
def sdk_clients() -> Iterator[list[openai.OpenAI]]:
    """Where a test puts its SDK clients, closed at the end."""
    made: list[openai.OpenAI] = []
    yield made
    for sdk in made:
        sdk.close()


def client(url: str, thread: str, made: list[openai.OpenAI]) -> openai.OpenAI:
    """The official SDK without its own retries: a 500 must show, not be retried away."""
    sdk = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=60,
        default_headers={"X-Thread-Id": thread},
    )
    made.append(sdk)
    return sdk


def ask(sdk: openai.OpenAI, text: str) -> str:
    completion = sdk.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content or ""


def pool_samples(url: str) -> dict[str, float]:
    """The `agent_db_pool_*` samples of `/metrics`, by sample name."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("agent_db_pool_")
    }


@pytest.mark.postgres
def test_the_first_turn_after_a_postgres_restart_succeeds_and_sees_the_thread(
    postgres_cluster: PostgresCluster,
    make_settings: SettingsFactory,
    serve_process: ServeProcess,
    sdk_clients: list[openai.OpenAI],
) -> None:
    service = serve_process(make_settings(database_url=postgres_cluster.url))
    sdk = client(service.url, "restart-thread", sdk_clients)
    assert ask(sdk, "What is 2 + 3?") == "2 + 3 = 5"

    postgres_cluster.restart()  # every pooled connection is now dead

    # The very first turn afterwards: no 500, and the thread from before the restart is there.
    started = time.monotonic()
    assert ask(sdk, "What did I say before?") == 'Earlier you said: "What is 2 + 3?"'
    # ... without the pool's backoff pause per dead connection (1 s, 2 s, 4 s for four).
    assert time.monotonic() - started < 4
    assert ask(sdk, "What is 4 * 5?") == "4 * 5 = 20"
    state = httpx.get(f"{service.url}/agent/threads/restart-thread/state", timeout=10)
    assert state.status_code == 200, state.text
    humans = [m["content"] for m in state.json()["values"]["messages"] if m["type"] == "human"]
    assert humans == ["What is 2 + 3?", "What did I say before?", "What is 4 * 5?"]
    assert httpx.get(f"{service.url}/ready", timeout=10).status_code == 200


@pytest.mark.postgres
def test_the_pool_is_in_the_metrics_and_counts_what_a_restart_broke(
    postgres_cluster: PostgresCluster,
    make_settings: SettingsFactory,
    serve: Serve,
    sdk_clients: list[openai.OpenAI],
) -> None:
    # Fewer than the pool's usual minimum of 4: the minimum follows the maximum down.
    app = serve(make_settings(database_url=postgres_cluster.url, database_pool_size=3))
    sdk = client(app.url, "metrics-thread", sdk_clients)
    ask(sdk, "What is 2 + 3?")

    before = pool_samples(app.url)
    assert before["agent_db_pool_max_size"] == 3
    assert before["agent_db_pool_min_size"] == 3
    assert 1 <= before["agent_db_pool_size"] <= 3
    assert 0 <= before["agent_db_pool_available"] <= before["agent_db_pool_size"]
    assert before["agent_db_pool_requests_waiting"] == 0
    assert before["agent_db_pool_connections_lost_total"] == 0
    assert "agent_db_pool_connection_errors_total" in before
    assert "agent_db_pool_request_errors_total" in before

    postgres_cluster.restart()
    ask(sdk, "What did I say before?")

    after = pool_samples(app.url)
    # The connections the restart killed were found broken and replaced, not handed out.
    assert after["agent_db_pool_connections_lost_total"] >= 1
    assert after["agent_db_pool_size"] >= 1
    assert after["agent_db_pool_requests_waiting"] == 0


def test_the_sqlite_store_exports_no_pool_series(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    assert pool_samples(app.url) == {}


@pytest.mark.postgres
def test_postgresql_sees_the_service_under_its_application_name(
    postgres_cluster: PostgresCluster, make_settings: SettingsFactory, serve: Serve
) -> None:
    serve(make_settings(database_url=postgres_cluster.url))
    with psycopg.connect(postgres_cluster.url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert [row[0] for row in rows] == ["agent-service"]


# --- a session killed in the middle of a checkpointer call --------------------------------


def _config(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


async def _terminate_when_blocked(admin: psycopg.AsyncConnection[Any]) -> int:
    """Kill the pool's session that waits on the test's table lock; its pid."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        row = await cursor.fetchone()
        if row is not None:
            await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            pid: int = row[0]
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError("no checkpointer session ever waited on the lock")


async def _killed_mid_call(
    saver: BaseCheckpointSaver[Any], admin_dsn: str, call: Callable[[], Any]
) -> Any:
    """Run `call` while its session is terminated as it waits on a lock (no effect yet)."""
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as admin:
        await admin.execute("BEGIN")
        await admin.execute("LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")
        task = asyncio.ensure_future(call())
        await _terminate_when_blocked(admin)
        await admin.execute("ROLLBACK")
        async with asyncio.timeout(20):
            return await task


@pytest.mark.postgres
async def test_a_read_whose_session_is_killed_before_it_answered_is_retried(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(database_url=postgres_url)
    async with open_checkpointer(settings) as saver:
        checkpoint = empty_checkpoint()
        await saver.aput(_config("killed-read"), checkpoint, {}, {})

        found = await _killed_mid_call(
            saver, postgres_url, lambda: saver.aget_tuple(_config("killed-read"))
        )

        assert found is not None
        assert found.checkpoint["id"] == checkpoint["id"]
        listed = await _killed_mid_call(
            saver, postgres_url, lambda: _collect(saver, _config("killed-read"))
        )
        assert [item.checkpoint["id"] for item in listed] == [checkpoint["id"]]


async def _collect(saver: BaseCheckpointSaver[Any], config: RunnableConfig) -> list[Any]:
    return [item async for item in saver.alist(config)]


@pytest.mark.postgres
async def test_a_write_whose_session_is_killed_before_it_applied_is_retried_once(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(database_url=postgres_url)
    async with open_checkpointer(settings) as saver:
        checkpoint = empty_checkpoint()

        await _killed_mid_call(
            saver, postgres_url, lambda: saver.aput(_config("killed-write"), checkpoint, {}, {})
        )

        stored = [item async for item in saver.alist(_config("killed-write"))]
        assert [item.checkpoint["id"] for item in stored] == [checkpoint["id"]]


@pytest.mark.postgres
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_while_postgres_is_down_a_turn_is_a_503_to_retry_and_the_first_after_succeeds(
    postgres_cluster: PostgresCluster,
    make_settings: SettingsFactory,
    serve: Serve,
    sdk_clients: list[openai.OpenAI],
    stream: bool,
) -> None:
    app = serve(make_settings(database_url=postgres_cluster.url, database_pool_timeout=2))
    sdk = client(app.url, "outage-thread", sdk_clients)
    assert ask(sdk, "What is 2 + 3?") == "2 + 3 = 5"

    postgres_cluster.halt()
    try:
        started = time.monotonic()
        down = httpx.post(
            f"{app.url}/v1/chat/completions",
            json={
                "model": "offline",
                "messages": [{"role": "user", "content": "anyone there?"}],
                "stream": stream,
            },
            headers={"X-Thread-Id": "outage-thread"},
            timeout=60,
        )
        waited = time.monotonic() - started
        # Long enough to wait out a restart, not the 30 s of psycopg_pool's default, no 500.
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "2"
        assert down.json()["error"]["code"] == "checkpointer_unavailable"
        assert waited < 15
        time.sleep(3)  # a longer outage: the pool's reconnect attempts back off meanwhile
    finally:
        postgres_cluster.resume()

    started = time.monotonic()
    assert ask(sdk, "What did I say before?") == 'Earlier you said: "What is 2 + 3?"'
    assert time.monotonic() - started < 8  # not the backoff grown during the outage


@pytest.mark.postgres
async def test_one_thread_waiting_on_postgres_does_not_hold_up_another(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    # AsyncPostgresSaver's instance-wide lock made every checkpoint operation of the process
    # wait for the one before it (langgraph issue 7259); on a pool they run side by side.
    settings = make_settings(database_url=postgres_url)
    async with open_checkpointer(settings) as saver:
        slow, quick = empty_checkpoint(), empty_checkpoint()
        await saver.aput(_config("slow-thread"), slow, {}, {})
        await saver.aput(_config("quick-thread"), quick, {}, {})
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            await other.execute("BEGIN")
            await other.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = 'slow-thread' FOR UPDATE"
            )
            # Rewriting the locked row waits for the other session's transaction...
            blocked = asyncio.ensure_future(saver.aput(_config("slow-thread"), slow, {}, {}))
            await _wait_until_blocked(other)
            # ...while another thread's read and write go through at once.
            async with asyncio.timeout(5):
                found = await saver.aget_tuple(_config("quick-thread"))
                await saver.aput(_config("quick-thread"), empty_checkpoint(), {}, {})
            assert found is not None
            assert found.checkpoint["id"] == quick["id"]
            assert not blocked.done()
            await other.execute("ROLLBACK")
        async with asyncio.timeout(10):
            await blocked


async def _wait_until_blocked(admin: psycopg.AsyncConnection[Any]) -> None:
    """Until some session of the service waits on a lock."""
    for _ in range(200):
        cursor = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        row = await cursor.fetchone()
        if row is not None and row[0] > 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no session ever waited on the lock")


@pytest.mark.postgres
async def test_a_connection_checked_moments_ago_is_handed_out_without_another_round_trip(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each check is a transaction of its own: a busy pool would pay one per checkout.
    check = checkpointer_module._CheckAll()
    # dict rows, as the pool's connections have them.
    conn = await psycopg.AsyncConnection.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    )
    await check(conn)
    await conn.close()  # from here on a round trip would fail
    await check(conn)  # checked moments ago: no round trip, no error
    monkeypatch.setattr(checkpointer_module, "CHECKED_FOR", 0.0)
    with pytest.raises(psycopg.Error):
        await check(conn)  # its check is due again, and finds it dead
