"""The long-term memory store: LangGraph's own store, in the checkpointer's database.

What a node reads and writes as `runtime.store`, and what the LangGraph API's `/store` routes
serve: items (a JSON object under a key, in a namespace: a path of labels) that outlive a
thread. It is LangGraph's own implementation, so its tables and behaviour are those of
LangGraph Server's: `AsyncPostgresStore` on the checkpointer's pool when DATABASE_URL is set,
else `AsyncSqliteStore` on a connection of its own to the SQLite checkpoint file.

Items may carry a time to live (minutes, refreshed when read): expired ones are swept every
`SWEEP_MINUTES` by the store's own sweeper, started here and stopped at exit.

Semantic search (`index`): LangGraph's stores embed items for a `query` when given an index
configuration; this service does not configure one yet, so a search's `query` is ignored and
items are matched by namespace and filter (see `open_memory_store`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore, TTLConfig
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore

from server.settings import Settings
from server.stores.checkpointer import connection_pool

__all__ = ["SWEEP_MINUTES", "open_memory_store"]

logger = logging.getLogger(__name__)

SWEEP_MINUTES: Final = 5
"""How often expired items are deleted."""

SQLITE_BUSY_SECONDS: Final = 5.0
"""How long a SQLite write waits for another writer of the file to finish."""

TTL: Final[TTLConfig] = {"refresh_on_read": True, "sweep_interval_minutes": SWEEP_MINUTES}
"""Items live as long as their `ttl` says (none: forever); a read restarts the clock."""


@asynccontextmanager
async def open_memory_store(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[BaseStore]:
    """The store in the database of `saver` (opened by `open_checkpointer`), set up.

    Its migrations run at start (`setup()`), as the checkpointer's do; its TTL sweeper runs
    until exit.

    Semantic search is not configured. LangGraph's PostgreSQL store would need pgvector and
    a vector dimension fixed at setup (changing the embedding would need the knowledge
    base's mismatch check), and its SQLite store loads sqlite-vec as an extension, which the
    standard `sqlite3` module of this Python cannot load (the knowledge base uses `sqlean`).
    """
    pool = connection_pool(saver)
    if pool is not None:
        store = AsyncPostgresStore(pool, ttl=TTL)
        await store.setup()
        logger.info("memory store in PostgreSQL")
        async with _sweeping(store):
            yield store
        return
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit, as the store's own `from_conn_string` opens it: it runs its transactions.
    async with aiosqlite.connect(
        str(path), timeout=SQLITE_BUSY_SECONDS, isolation_level=None
    ) as conn:
        sqlite_store = AsyncSqliteStore(conn, ttl=TTL)
        await sqlite_store.setup()
        logger.info("memory store in SQLite file %s", path)
        async with _sweeping(sqlite_store):
            yield sqlite_store


@asynccontextmanager
async def _sweeping(store: AsyncPostgresStore | AsyncSqliteStore) -> AsyncIterator[None]:
    """Run the store's TTL sweeper while the block runs."""
    await store.start_ttl_sweeper()
    try:
        yield
    finally:
        await store.stop_ttl_sweeper()
