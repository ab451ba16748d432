"""The LangGraph API's thread records, on SQLite, on a real PostgreSQL, and in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from server.stores.checkpointer import open_checkpointer
from server.stores.graph_thread_sql import open_thread_records
from server.stores.graph_threads import (
    MemoryThreadRecords,
    ThreadQuery,
    ThreadRecords,
    contains,
)
from server.stores.retention import purge
from tests.conftest import SettingsFactory


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
async def records(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> AsyncIterator[ThreadRecords]:
    """The records store on each database."""
    if request.param == "memory":
        yield MemoryThreadRecords()
        return
    settings = (
        make_settings(database_url=request.getfixturevalue("postgres_url"))
        if request.param == "postgres"
        else make_settings()
    )
    async with open_checkpointer(settings) as saver, open_thread_records(settings, saver) as opened:
        yield opened


async def test_create_once_then_get(records: ThreadRecords) -> None:
    created = await records.create("k:a", "k", {"user": {"name": "ann"}, "n": 1})
    assert created is not None
    assert created.metadata == {"user": {"name": "ann"}, "n": 1}
    assert created.status == "idle"
    assert created.created_at == created.updated_at > 0

    assert await records.create("k:a", "k", {"other": True}) is None
    fetched = await records.get("k:a")
    assert fetched == created
    assert await records.get("k:missing") is None


async def test_stamp_and_update_merge_metadata(records: ThreadRecords) -> None:
    stamped = await records.stamp("k:a", "k", {"graph_id": "agent"})
    assert stamped.metadata == {"graph_id": "agent"}
    again = await records.stamp("k:a", "k", {"assistant_id": "x"})
    assert again.metadata == {"graph_id": "agent", "assistant_id": "x"}
    assert again.created_at == stamped.created_at
    assert again.updated_at >= stamped.updated_at

    updated = await records.update("k:a", metadata={"graph_id": "other", "n": [1, 2]})
    assert updated is not None
    assert updated.metadata == {"graph_id": "other", "assistant_id": "x", "n": [1, 2]}
    assert await records.update("k:missing", metadata={"a": 1}) is None

    adopted = await records.stamp("k:old", "k", {"graph_id": "agent"}, created_at=1000.0)
    assert adopted.created_at == 1000.0
    assert adopted.updated_at > 1000.0


async def test_status_and_delete(records: ThreadRecords) -> None:
    await records.create("k:a", "k", {})
    await records.set_status("k:a", "error", "it broke")
    record = await records.get("k:a")
    assert record is not None
    assert (record.status, record.error) == ("error", "it broke")
    await records.set_status("k:a", "idle")
    record = await records.get("k:a")
    assert record is not None
    assert (record.status, record.error) == ("idle", None)
    await records.set_status("k:none", "busy")  # no record: left alone
    assert await records.get("k:none") is None

    assert await records.delete("k:a") is True
    assert await records.delete("k:a") is False
    assert await records.get("k:a") is None


async def test_search_by_containment_status_ids_and_pages(records: ThreadRecords) -> None:
    await records.create("k:1", "k", {"graph_id": "agent", "tags": ["a", "b"], "n": 1})
    await records.create("k:2", "k", {"graph_id": "agent", "user": {"id": 7, "x": 1}})
    await records.create("k:3", "k", {"graph_id": "other", "flag": True})
    await records.create("j:4", "j", {"graph_id": "agent"})  # another caller's
    await records.set_status("k:2", "interrupted")

    def ids(found: list[Any]) -> list[str]:
        return [record.stored_id for record in found]

    newest_first = await records.search("k", ThreadQuery())
    assert ids(newest_first) == ["k:3", "k:2", "k:1"]
    assert ids(await records.search("k", ThreadQuery(sort_order="asc", limit=2))) == ["k:1", "k:2"]
    assert ids(await records.search("k", ThreadQuery(limit=1, offset=1))) == ["k:2"]
    assert ids(await records.search("k", ThreadQuery(sort_by="thread_id", sort_order="asc"))) == [
        "k:1",
        "k:2",
        "k:3",
    ]
    assert ids(await records.search("k", ThreadQuery(metadata={"graph_id": "agent"}))) == [
        "k:2",
        "k:1",
    ]
    assert ids(await records.search("k", ThreadQuery(metadata={"user": {"id": 7}}))) == ["k:2"]
    assert ids(await records.search("k", ThreadQuery(metadata={"tags": ["b"]}))) == ["k:1"]
    assert ids(await records.search("k", ThreadQuery(metadata={"n": True}))) == []
    assert ids(await records.search("k", ThreadQuery(metadata={"flag": True}))) == ["k:3"]
    assert ids(await records.search("k", ThreadQuery(status="interrupted"))) == ["k:2"]
    assert ids(await records.search("k", ThreadQuery(ids=["k:1", "k:3", "j:4"]))) == ["k:3", "k:1"]
    assert ids(await records.search("j", ThreadQuery())) == ["j:4"]
    assert await records.count("k", ThreadQuery()) == 3
    assert await records.count("k", ThreadQuery(metadata={"graph_id": "agent"})) == 2
    assert await records.count("k", ThreadQuery(status="idle")) == 2


def test_containment_is_postgres_jsonb_containment() -> None:
    assert contains({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}})
    assert contains({"a": [1, 2, 3]}, {"a": [3, 1]})
    assert not contains({"a": 1}, {"a": True})
    assert not contains({"a": True}, {"a": 1})
    assert contains({"a": 1}, {"a": 1.0})
    assert not contains({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}})
    assert contains({"a": None}, {"a": None})
    assert not contains({}, {"a": None})


async def test_retention_deletes_a_threads_record_with_its_checkpoints(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    async with open_checkpointer(settings) as saver, open_thread_records(settings, saver) as rec:
        config: RunnableConfig = {"configurable": {"thread_id": "old", "checkpoint_ns": ""}}
        checkpoint = empty_checkpoint()
        checkpoint["ts"] = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        await saver.aput(config, checkpoint, {"source": "loop", "step": 0}, {})
        await rec.create("old", "anonymous", {"a": 1})
        await rec.create("kept", "anonymous", {})

        report = await purge(saver, timedelta(days=30), records=rec)

        assert report.thread_ids == ["old"]
        assert await rec.get("old") is None
        assert await rec.get("kept") is not None
