"""The long-term memory store: LangGraph's own store, in the checkpointer's database.

What a node reads and writes as `runtime.store`, and what the LangGraph API's `/store` routes
serve: items (a JSON object under a key, in a namespace: a path of labels) that outlive a
thread. It is LangGraph's own implementation, so its tables and behaviour are those of
LangGraph Server's: `AsyncPostgresStore` on the checkpointer's pool when DATABASE_URL is set,
else `AsyncSqliteStore` on a connection of its own to the SQLite checkpoint file.

Items may carry a time to live (minutes, refreshed when read): expired ones are swept every
`SWEEP_MINUTES` by the store's own sweeper, started here and stopped at exit.

Semantic search: on PostgreSQL, when an embedding is configured (the knowledge base's,
`MemoryIndex`), the store embeds each item's value as it is put (pgvector, cosine distance)
and a search's `query` orders items by similarity (`score`). Its vectors have the
dimension of the embedding they were made with: a store whose vectors have another
dimension, or a server without pgvector, keeps working without semantic search (logged).
On SQLite there is none: a search's `query` is ignored and items are matched by namespace
and filter (see `open_memory_store`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from langchain_core.embeddings import Embeddings
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore, TTLConfig
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import PostgresIndexConfig
from langgraph.store.sqlite.aio import AsyncSqliteStore

from server.settings import Settings
from server.stores.beside import sqlite_beside_checkpoints
from server.stores.checkpointer import Pool, connection_pool

__all__ = ["SWEEP_MINUTES", "MemoryIndex", "open_memory_store"]

logger = logging.getLogger(__name__)

SWEEP_MINUTES: Final = 5
"""How often expired items are deleted."""

TTL: Final[TTLConfig] = {"refresh_on_read": True, "sweep_interval_minutes": SWEEP_MINUTES}
"""Items live as long as their `ttl` says (none: forever); a read restarts the clock."""

MAX_INDEXED_DIMENSION: Final = 2000
"""The most dimensions pgvector's HNSW index takes; longer vectors are searched unindexed."""


@dataclass(frozen=True)
class MemoryIndex:
    """The embedding semantic search uses (the knowledge base's)."""

    embeddings: Embeddings
    dimension: int

    def config(self) -> PostgresIndexConfig:
        """LangGraph's index configuration: the whole value embedded, cosine distance."""
        kind = "hnsw" if self.dimension <= MAX_INDEXED_DIMENSION else "flat"
        return {
            "dims": self.dimension,
            "embed": self.embeddings,
            "fields": ["$"],
            "distance_type": "cosine",
            "ann_index_config": {"kind": kind},  # type: ignore[typeddict-item]
        }


@asynccontextmanager
async def open_memory_store(
    settings: Settings, saver: BaseCheckpointSaver[Any], index: MemoryIndex | None = None
) -> AsyncIterator[BaseStore]:
    """The store in the database of `saver` (opened by `open_checkpointer`), set up.

    Its migrations run at start (`setup()`), as the checkpointer's do; its TTL sweeper runs
    until exit. `index`: the embedding of semantic search, on PostgreSQL.

    No semantic search on SQLite: LangGraph's SQLite store loads sqlite-vec as an extension,
    which the standard `sqlite3` module of this Python cannot load (the knowledge base uses
    `sqlean`, a second SQLite library, on a file of its own: two SQLite libraries must not
    share the checkpoints' file, as their locks do not see each other).
    """
    pool = connection_pool(saver)
    if pool is not None:
        store = await _postgres_store(pool, index)
        async with _sweeping(store):
            yield store
        return
    # Autocommit, as the store's own `from_conn_string` opens it: it runs its transactions.
    async with sqlite_beside_checkpoints(settings, isolation_level=None) as conn:
        sqlite_store = AsyncSqliteStore(conn, ttl=TTL)
        await sqlite_store.setup()
        logger.info("memory store in SQLite file %s", settings.sqlite_path)
        async with _sweeping(sqlite_store):
            yield sqlite_store


async def _postgres_store(pool: Pool, index: MemoryIndex | None) -> AsyncPostgresStore:
    """The PostgreSQL store, set up: with semantic search when `index` is given and can be."""
    if index is not None:
        stored = await _stored_dimension(pool)
        if stored is not None and stored != index.dimension:
            logger.error(
                "memory store: semantic search is off: its vectors have %d dimensions, the "
                "configured embedding %d (KNOWLEDGE_EMBEDDINGS changed); drop the "
                "store_vectors and vector_migrations tables to index it anew",
                stored,
                index.dimension,
            )
        else:
            indexed = AsyncPostgresStore(pool, index=index.config(), ttl=TTL)
            try:
                await indexed.setup()
            except psycopg.Error as error:
                logger.error("memory store: semantic search is off: %s", error)
            else:
                logger.info("memory store in PostgreSQL, semantic search on")
                return indexed
    store = AsyncPostgresStore(pool, ttl=TTL)
    await store.setup()
    logger.info("memory store in PostgreSQL")
    return store


async def _stored_dimension(pool: Pool) -> int | None:
    """The dimension of the store's vectors, or None when it has no vector table yet."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT atttypmod AS dims FROM pg_attribute"
            " WHERE attrelid = to_regclass('store_vectors') AND attname = 'embedding'"
        )
        row = await cursor.fetchone()
    return None if row is None else int(row["dims"])


@asynccontextmanager
async def _sweeping(store: AsyncPostgresStore | AsyncSqliteStore) -> AsyncIterator[None]:
    """Run the store's TTL sweeper while the block runs."""
    await store.start_ttl_sweeper()
    try:
        yield
    finally:
        await store.stop_ttl_sweeper()
