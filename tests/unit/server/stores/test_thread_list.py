"""The thread listing over the checkpointer's tables, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from server.stores.checkpointer import open_checkpointer
from server.stores.thread_list import (
    ThreadRow,
    checkpoint_time,
    first_checkpoint_id,
    list_threads,
)
from tests.conftest import SettingsFactory


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
async def saver(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The service's checkpointer on each database (and the in-memory one of unit tests)."""
    if request.param == "memory":
        yield InMemorySaver()
        return
    settings = (
        make_settings(database_url=request.getfixturevalue("postgres_url"))
        if request.param == "postgres"
        else make_settings()
    )
    async with open_checkpointer(settings) as opened:
        yield opened


async def put(saver: BaseCheckpointSaver[Any], thread_id: str, ns: str = "") -> str:
    """Write one checkpoint on the thread, after its latest; its id."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
    latest = await saver.aget_tuple(config)
    if latest is not None:
        config = latest.config
    checkpoint = empty_checkpoint()
    written = await saver.aput(config, checkpoint, {"source": "loop", "step": 0}, {})
    return str(written["configurable"]["checkpoint_id"])


def ids(rows: list[ThreadRow]) -> list[str]:
    return [row.stored_id for row in rows]


async def test_a_callers_threads_newest_first_and_no_one_elses(
    saver: BaseCheckpointSaver[Any],
) -> None:
    await put(saver, "aaaa:old")
    await put(saver, "bbbb:someone-else")
    await put(saver, "aaaa:busy")
    await put(saver, "aaaa;not-a-namespace")  # the character after ':' in the range's end
    await put(saver, "aaaa:new")
    last = await put(saver, "aaaa:busy")  # a new turn moves it to the top
    await put(saver, "aaaa:sub", ns="child")  # a subgraph's checkpoint is not a thread

    rows = await list_threads(saver, prefix="aaaa:", limit=10)

    assert ids(rows) == ["aaaa:busy", "aaaa:new", "aaaa:old"]
    assert rows[0].checkpoints == 2
    assert rows[0].last_checkpoint_id == last
    assert ids(await list_threads(saver, prefix="bbbb:", limit=10)) == ["bbbb:someone-else"]
    everyone = await list_threads(saver, prefix="", limit=10)
    assert len(everyone) == 5


async def test_pages_follow_the_last_rows_checkpoint(saver: BaseCheckpointSaver[Any]) -> None:
    for n in range(5):
        await put(saver, f"k:{n}")

    first = await list_threads(saver, prefix="k:", limit=2)
    second = await list_threads(saver, prefix="k:", limit=2, before=first[-1].last_checkpoint_id)
    third = await list_threads(saver, prefix="k:", limit=2, before=second[-1].last_checkpoint_id)
    # A new turn between page loads moves its thread to the first page, never repeats one.
    await put(saver, "k:2")
    after_turn = await list_threads(
        saver, prefix="k:", limit=2, before=first[-1].last_checkpoint_id
    )

    assert ids(first) == ["k:4", "k:3"]
    assert ids(second) == ["k:2", "k:1"]
    assert ids(third) == ["k:0"]
    assert ids(after_turn) == ["k:1", "k:0"]
    assert ids(await list_threads(saver, prefix="k:", limit=1)) == ["k:2"]


async def test_the_update_time_is_read_from_the_checkpoint_id(
    saver: BaseCheckpointSaver[Any],
) -> None:
    before = datetime.now(UTC)
    await put(saver, "t:one")
    (row,) = await list_threads(saver, prefix="t:", limit=1)
    stored = await saver.aget_tuple({"configurable": {"thread_id": "t:one"}})

    assert stored is not None
    moment = row.updated_at
    assert moment is not None
    assert abs(moment - datetime.fromisoformat(stored.checkpoint["ts"])) < timedelta(seconds=1)
    assert moment >= before - timedelta(seconds=1)


def test_an_id_that_is_not_a_uuid6_has_no_time() -> None:
    assert checkpoint_time("not-a-uuid") is None
    assert checkpoint_time("6f1c2a3e-0000-4000-8000-000000000000") is None


async def test_a_threads_first_checkpoint(saver: BaseCheckpointSaver[Any]) -> None:
    await put(saver, "k:a", ns="child")  # a subgraph's checkpoint is not the thread's start
    first = await put(saver, "k:a")
    await put(saver, "k:a")

    assert await first_checkpoint_id(saver, "k:a") == first
    assert await first_checkpoint_id(saver, "k:none") is None
