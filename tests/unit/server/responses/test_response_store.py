"""The `responses` table on SQLite and PostgreSQL: written once, read and deleted per key."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from server.ops.checkpointer import open_checkpointer
from server.ops.response_store import StoredResponse, open_response_store
from tests.conftest import SettingsFactory


def record(rid: str, key: str = "k1") -> StoredResponse:
    return StoredResponse(
        id=rid,
        key_id=key,
        thread_id=f"{key}:{rid}",
        checkpoint_id="1f0-abc",
        model="offline",
        created_at=1.5,
        response={"id": rid, "object": "response", "output": [{"text": "é ✓"}]},
        input_items=[{"id": "msg_1", "type": "message"}],
        metadata={"a": "b"},
    )


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_rows_survive_a_restart_and_belong_to_their_key(
    make_settings: SettingsFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    extra = {"database_url": request.getfixturevalue("postgres_url")} if store == "postgres" else {}
    settings = make_settings(sqlite_path=tmp_path / "c.sqlite", **extra)
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as rows:
        await rows.save(record("resp_1"))
        assert await rows.get("resp_1", "k2") is None  # another key's
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as rows:
        assert await rows.get("resp_1", "k1") == record("resp_1")
        assert not await rows.delete("resp_1", "k2")
        assert await rows.delete("resp_1", "k1")
        assert await rows.get("resp_1", "k1") is None
        assert not await rows.delete("resp_1", "k1")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_latest_checkpoint_is_read_from_the_savers_table(
    make_settings: SettingsFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    extra = {"database_url": request.getfixturevalue("postgres_url")} if store == "postgres" else {}
    settings = make_settings(sqlite_path=tmp_path / "c.sqlite", **extra)
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as rows:
        assert await rows.latest_checkpoint("t") is None
        config: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        written = []
        for _ in range(2):
            checkpoint = empty_checkpoint()
            config = await saver.aput(config, checkpoint, {}, {})
            written.append(checkpoint["id"])
        assert await rows.latest_checkpoint("t") == written[-1]
        found = await saver.aget_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": ""}})
        assert found is not None
        assert found.config["configurable"]["checkpoint_id"] == written[-1]
