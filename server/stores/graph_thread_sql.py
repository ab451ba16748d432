"""The LangGraph API's thread records in the checkpointer's database (`graph_threads`).

PostgreSQL on the checkpointer's own pool when DATABASE_URL is set (the metadata a JSONB
column, searched by containment, `@>`, on a GIN index), else the SQLite checkpoint file
(`server.stores.graph_thread_sqlite`). See `server.stores.graph_threads` for what a record
holds and the interface both implement.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.types.json import Jsonb

from server.settings import Settings
from server.stores.beside import open_beside_checkpoints
from server.stores.checkpointer import Pool, once_more
from server.stores.graph_thread_rows import (
    COLUMNS,
    KEY_INDEX,
    METADATA_INDEX,
    TABLE,
    order_by,
    record_of,
)
from server.stores.graph_thread_sqlite import SqliteThreadRecords
from server.stores.graph_threads import ThreadQuery, ThreadRecord, ThreadRecords, ThreadStatus

__all__ = ["PostgresThreadRecords", "SqliteThreadRecords", "open_thread_records"]


class PostgresThreadRecords:
    """`graph_threads` in PostgreSQL, on the checkpointer's pool.

    Each query runs once more on a new connection when its connection was lost
    (`once_more`); each is safe to repeat (an upsert, a merge of the same keys, a delete).
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def setup(self) -> None:
        """Create the table and its indexes if they are missing."""
        async with self._pool.connection() as conn:
            await conn.execute(TABLE.format(json="JSONB", real="DOUBLE PRECISION"))
            await conn.execute(KEY_INDEX)
            await conn.execute(METADATA_INDEX)

    async def _one(self, query: str, params: tuple[Any, ...]) -> ThreadRecord | None:
        async def run() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchone() if cursor.description else None

        row = await once_more(self._pool, "graph threads", run)
        return None if row is None else _record(row)

    async def get(self, stored_id: str) -> ThreadRecord | None:
        """See `ThreadRecords.get`."""
        return await self._one(
            f"SELECT {COLUMNS} FROM graph_threads WHERE stored_id = %s",  # noqa: S608 - constant columns  # nosec B608
            (stored_id,),
        )

    async def create(
        self,
        stored_id: str,
        key_id: str,
        metadata: dict[str, Any],
        *,
        created_at: float | None = None,
    ) -> ThreadRecord | None:
        """See `ThreadRecords.create`."""
        now = time.time()
        return await self._one(
            f"INSERT INTO graph_threads ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, 'idle', NULL)"  # noqa: S608 - constant columns  # nosec B608
            f" ON CONFLICT (stored_id) DO NOTHING RETURNING {COLUMNS}",
            (stored_id, key_id, Jsonb(metadata), created_at or now, now),
        )

    async def stamp(
        self,
        stored_id: str,
        key_id: str,
        metadata: dict[str, Any],
        *,
        created_at: float | None = None,
    ) -> ThreadRecord:
        """See `ThreadRecords.stamp`."""
        now = time.time()
        record = await self._one(
            f"INSERT INTO graph_threads ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, 'idle', NULL)"  # noqa: S608 - constant columns  # nosec B608
            " ON CONFLICT (stored_id) DO UPDATE SET"
            " metadata = graph_threads.metadata || EXCLUDED.metadata,"
            f" updated_at = EXCLUDED.updated_at RETURNING {COLUMNS}",
            (stored_id, key_id, Jsonb(metadata), created_at or now, now),
        )
        assert record is not None  # nosec B101 - an upsert returns its row
        return record

    async def update(
        self, stored_id: str, *, metadata: dict[str, Any] | None = None
    ) -> ThreadRecord | None:
        """See `ThreadRecords.update`."""
        return await self._one(
            "UPDATE graph_threads SET metadata = metadata || %s, updated_at = %s"  # noqa: S608 - constant columns  # nosec B608
            f" WHERE stored_id = %s RETURNING {COLUMNS}",
            (Jsonb(metadata or {}), time.time(), stored_id),
        )

    async def set_status(
        self, stored_id: str, status: ThreadStatus, error: str | None = None
    ) -> None:
        """See `ThreadRecords.set_status`."""
        await self._one(
            "UPDATE graph_threads SET status = %s, error = %s, updated_at = %s"
            " WHERE stored_id = %s",
            (status, error, time.time(), stored_id),
        )

    async def delete(self, stored_id: str) -> bool:
        """See `ThreadRecords.delete`."""
        gone = await self._one(
            "DELETE FROM graph_threads WHERE stored_id = %s RETURNING stored_id, key_id,"
            " metadata, created_at, updated_at, status, error",
            (stored_id,),
        )
        return gone is not None

    def _where(self, key_id: str, query: ThreadQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = ["key_id = %s"]
        params: list[Any] = [key_id]
        if query.metadata:
            clauses.append("metadata @> %s")
            params.append(Jsonb(query.metadata))
        if query.status is not None:
            clauses.append("status = %s")
            params.append(query.status)
        if query.ids is not None:
            clauses.append("stored_id = ANY(%s)")
            params.append(query.ids)
        return " AND ".join(clauses), params

    async def _all(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        async def run() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()

        rows: list[Any] = await once_more(self._pool, "graph threads", run)
        return rows

    async def search(self, key_id: str, query: ThreadQuery) -> list[ThreadRecord]:
        """See `ThreadRecords.search` (one query on the key's index, or the GIN index)."""
        where, params = self._where(key_id, query)
        rows = await self._all(
            f"SELECT {COLUMNS} FROM graph_threads WHERE {where}"  # noqa: S608 - constant clauses  # nosec B608
            f" ORDER BY {order_by(query.sort_by, query.sort_order)} LIMIT %s OFFSET %s",
            (*params, query.limit, query.offset),
        )
        return [_record(row) for row in rows]

    async def count(self, key_id: str, query: ThreadQuery) -> int:
        """See `ThreadRecords.count`."""
        where, params = self._where(key_id, query)
        rows = await self._all(
            f"SELECT count(*) AS n FROM graph_threads WHERE {where}",  # noqa: S608 - constant clauses  # nosec B608
            tuple(params),
        )
        return int(rows[0]["n"]) if rows else 0


def _record(row: Any) -> ThreadRecord:
    """A row of the pool's dict rows as a record."""
    return record_of([row[name] for name in COLUMNS.split(", ")], parse=False)


@asynccontextmanager
async def open_thread_records(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[ThreadRecords]:
    """The thread records in the database of `saver` (opened by `open_checkpointer`), set up.

    PostgreSQL when the saver runs on a pool, else the SQLite file of SQLITE_PATH.
    """
    async with open_beside_checkpoints(
        settings, saver, PostgresThreadRecords, SqliteThreadRecords
    ) as store:
        yield store
