"""The assistants' store, in memory, on real SQLite and on real PostgreSQL.

The SQL stores are opened the way the lifespan opens them: over the checkpointer of the
settings (its PostgreSQL pool, or beside its SQLite file).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from server.stores.assistant_sql import open_assistant_store
from server.stores.assistants import (
    AssistantPatch,
    AssistantStore,
    MemoryAssistants,
    StoredAssistant,
    now_iso,
)
from server.stores.checkpointer import open_checkpointer
from tests.conftest import SettingsFactory

OpenStore = Callable[[], AbstractAsyncContextManager[AssistantStore]]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> OpenStore:
    """Open the store as the lifespan does (several opens share the database)."""
    if request.param == "memory":
        shared = MemoryAssistants()

        @asynccontextmanager
        async def in_memory() -> AsyncIterator[AssistantStore]:
            yield shared

        return in_memory
    overrides: dict[str, Any] = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    settings = make_settings(**overrides)

    @asynccontextmanager
    async def opened() -> AsyncIterator[AssistantStore]:
        async with (
            open_checkpointer(settings) as saver,
            open_assistant_store(settings, saver) as store,
        ):
            yield store

    return opened


def preset(assistant_id: str = "a1", **fields: Any) -> StoredAssistant:
    now = now_iso()
    values: dict[str, Any] = {
        "assistant_id": assistant_id,
        "graph_id": "agent",
        "version": 1,
        "config": {"recursion_limit": 30},
        "context": {"model": "offline", "instructions": "Be terse."},
        "metadata": {"team": "a"},
        "name": "terse",
        "description": None,
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    return StoredAssistant(**values)


async def test_an_assistant_is_created_once_and_read_back_per_key(open_store: OpenStore) -> None:
    async with open_store() as store:
        assert await store.create("k1", preset())
        assert not await store.create("k1", preset(name="other"))  # the id is taken
        assert await store.create("k2", preset(name="theirs"))  # another key's id space
        mine = await store.get("k1", "a1")
        theirs = await store.get("k2", "a1")
        assert await store.get("k3", "a1") is None
        assert [a.assistant_id for a in await store.of_key("k1")] == ["a1"]
    assert mine is not None
    assert mine.name == "terse"
    assert mine.version == 1
    assert mine.context == {"model": "offline", "instructions": "Be terse."}
    assert theirs is not None
    assert theirs.name == "theirs"


async def test_a_change_is_a_new_version_and_an_old_one_can_be_the_latest_again(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await store.create("k1", preset())
        second = await store.update("k1", "a1", AssistantPatch(metadata={"v": 2}, name="n2"))
        third = await store.update("k1", "a1", AssistantPatch(context={"model": "x"}))
        assert await store.update("k2", "a1", AssistantPatch(name="not mine")) is None
        versions = await store.versions("k1", "a1")
        back = await store.set_latest("k1", "a1", 1)
        latest = await store.get("k1", "a1")
        assert await store.set_latest("k1", "a1", 9) is None
        assert await store.versions("k2", "a1") == []
    assert second is not None
    assert third is not None
    assert (second.version, second.name, second.metadata) == (2, "n2", {"team": "a", "v": 2})
    assert second.context == {"model": "offline", "instructions": "Be terse."}  # carried over
    assert (third.version, third.name, third.context) == (3, "n2", {"model": "x"})
    assert third.config == {"recursion_limit": 30}
    assert [v.version for v in versions] == [3, 2, 1]
    assert back is not None
    assert (back.version, back.name) == (1, "terse")
    assert latest == back
    assert latest.created_at == second.created_at == third.created_at


async def test_versions_keep_counting_after_an_old_one_is_made_the_latest(
    open_store: OpenStore,
) -> None:
    async with open_store() as store:
        await store.create("k1", preset())
        await store.update("k1", "a1", AssistantPatch(name="n2"))
        await store.set_latest("k1", "a1", 1)
        fourth = await store.update("k1", "a1", AssistantPatch(description="d"))
    assert fourth is not None
    assert (fourth.version, fourth.name, fourth.description) == (3, "terse", "d")


async def test_a_deleted_assistant_is_gone_with_its_versions(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create("k1", preset())
        await store.update("k1", "a1", AssistantPatch(name="n2"))
        assert not await store.delete("k2", "a1")
        assert await store.delete("k1", "a1")
        assert not await store.delete("k1", "a1")
        assert await store.get("k1", "a1") is None
        assert await store.versions("k1", "a1") == []
        assert await store.create("k1", preset())  # the id is free again
        again = await store.get("k1", "a1")
    assert again is not None
    assert again.version == 1


async def test_assistants_survive_a_restart(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create("k1", preset())
        await store.update("k1", "a1", AssistantPatch(name="n2"))
    async with open_store() as store:
        latest = await store.get("k1", "a1")
        versions = await store.versions("k1", "a1")
    assert latest is not None
    assert (latest.version, latest.name) == (2, "n2")
    assert [v.version for v in versions] == [2, 1]


async def test_concurrent_changes_get_distinct_versions(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.create("k1", preset())
        made = await asyncio.gather(
            *(store.update("k1", "a1", AssistantPatch(name=f"n{i}")) for i in range(5))
        )
        versions = await store.versions("k1", "a1")
    assert sorted(m.version for m in made if m is not None) == [2, 3, 4, 5, 6]
    assert [v.version for v in versions] == [6, 5, 4, 3, 2, 1]
