"""The `responses` table on SQLite and PostgreSQL: written once, read and deleted per key."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from server.stores.checkpointer import open_checkpointer
from server.stores.response_store import (
    PostgresResponseStore,
    SqliteResponseStore,
    StoredResponse,
    open_response_store,
)
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


def with_items(rid: str, key: str = "k1", thread: str = "t") -> StoredResponse:
    return StoredResponse(
        id=rid,
        key_id=key,
        thread_id=thread,
        checkpoint_id="1f0-abc",
        model="offline",
        created_at=1.5,
        response={"id": rid, "output": [{"id": f"msg_out_{rid}", "type": "message"}]},
        input_items=[{"id": f"msg_in_{rid}", "type": "message", "content": "é ✓"}],
    )


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_items_are_found_by_id_per_key_and_go_with_their_response(
    make_settings: SettingsFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    extra = {"database_url": request.getfixturevalue("postgres_url")} if store == "postgres" else {}
    settings = make_settings(sqlite_path=tmp_path / "c.sqlite", **extra)
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as rows:
        await rows.save(with_items("resp_a"))
        await rows.save(with_items("resp_b", thread="u"))
        await rows.save(with_items("resp_c", key="k2"))
        found = await rows.items(["msg_in_resp_a", "msg_out_resp_a", "msg_in_resp_c", "x"], "k1")
        assert found == {
            "msg_in_resp_a": {"id": "msg_in_resp_a", "type": "message", "content": "é ✓"},
            "msg_out_resp_a": {"id": "msg_out_resp_a", "type": "message"},
        }
        assert await rows.delete("resp_a", "k1")
        assert await rows.items(["msg_in_resp_a", "msg_out_resp_a"], "k1") == {}
        assert await rows.forget_thread("u") == 1
        assert await rows.items(["msg_in_resp_b"], "k1") == {}
        assert list(await rows.items(["msg_in_resp_c"], "k2")) == ["msg_in_resp_c"]
        assert await rows.items([], "k2") == {}
        many = [f"msg_{n}" for n in range(1200)] + ["msg_in_resp_c"]  # past one SQLite batch
        assert list(await rows.items(many, "k2")) == ["msg_in_resp_c"]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_responses_stored_before_the_item_index_are_indexed_once(
    make_settings: SettingsFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    extra = {"database_url": request.getfixturevalue("postgres_url")} if store == "postgres" else {}
    settings = make_settings(sqlite_path=tmp_path / "c.sqlite", **extra)
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as rows:
        await rows.save(with_items("resp_old"))
        # As an older version left it: the responses table without the item index.
        if isinstance(rows, PostgresResponseStore):
            async with rows._pool.connection() as conn:
                await conn.execute("DROP TABLE response_items")
        else:
            assert isinstance(rows, SqliteResponseStore)
            await rows._conn.execute("DROP TABLE response_items")
            await rows._conn.commit()
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as rows:
        found = await rows.items(["msg_in_resp_old", "msg_out_resp_old"], "k1")
        assert sorted(found) == ["msg_in_resp_old", "msg_out_resp_old"]
        assert found["msg_in_resp_old"]["content"] == "é ✓"
