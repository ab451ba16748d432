"""The long-term memory store (LangGraph's own classes) on real SQLite and real PostgreSQL.

Opened the way the lifespan opens it: over the checkpointer of the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore

from server.stores.checkpointer import open_checkpointer
from server.stores.memory_store import open_memory_store
from tests.conftest import SettingsFactory

OpenStore = Callable[[], AbstractAsyncContextManager[BaseStore]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> OpenStore:
    """Open the store as the lifespan does."""
    overrides: dict[str, Any] = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    settings = make_settings(**overrides)

    @asynccontextmanager
    async def opened() -> AsyncIterator[BaseStore]:
        async with (
            open_checkpointer(settings) as saver,
            open_memory_store(settings, saver) as store,
        ):
            yield store

    return opened


async def test_the_store_is_langgraphs_own_and_sweeps_while_open(open_store: OpenStore) -> None:
    async with open_store() as store:
        assert isinstance(store, AsyncPostgresStore | AsyncSqliteStore)
        # The TTL sweeper runs while the store is open (`supports_ttl` is no guide: the
        # SQLite store's says False through its base classes' order, yet it keeps TTLs).
        assert store._ttl_sweeper_task is not None
        assert not store._ttl_sweeper_task.done()
        sweeper = store._ttl_sweeper_task
    assert sweeper.done()


async def test_items_are_stored_found_and_kept_across_a_restart(open_store: OpenStore) -> None:
    async with open_store() as store:
        await store.aput(("k1", "users", "u1"), "likes", {"colour": "blue"})
        await store.aput(("k1", "users", "u2"), "likes", {"colour": "red"}, ttl=60)
        await store.aput(("k2", "users", "u1"), "likes", {"colour": "green"})
    async with open_store() as store:
        item = await store.aget(("k1", "users", "u1"), "likes")
        red = await store.asearch(("k1",), filter={"colour": "red"})
        namespaces = await store.alist_namespaces(prefix=("k1",))
        await store.adelete(("k1", "users", "u1"), "likes")
        gone = await store.aget(("k1", "users", "u1"), "likes")
    assert item is not None
    assert item.value == {"colour": "blue"}
    assert [(i.namespace, i.value) for i in red] == [(("k1", "users", "u2"), {"colour": "red"})]
    assert sorted(namespaces) == [("k1", "users", "u1"), ("k1", "users", "u2")]
    assert gone is None
