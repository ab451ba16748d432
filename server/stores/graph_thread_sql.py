"""The LangGraph API's thread records in the checkpointer's database (`graph_threads`).

PostgreSQL on the checkpointer's own pool when DATABASE_URL is set (the metadata a JSONB
column, searched by containment, `@>`, on a GIN index), else the SQLite checkpoint file on a
connection of its own (as the response store does; the metadata JSON text, searched here:
an embedded service holds few threads). See `server.stores.graph_threads` for what a record
holds and the interface both implement.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal, cast

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.types.json import Jsonb

from server.settings import Settings
from server.stores.checkpointer import Pool, connection_pool, once_more
from server.stores.graph_threads import (
    SortBy,
    ThreadRecord,
    ThreadRecords,
    ThreadStatus,
    matches,
)

__all__ = ["PostgresThreadRecords", "SqliteThreadRecords", "open_thread_records"]

SQLITE_BUSY_SECONDS: Final = 5.0
"""How long a SQLite write waits for the checkpointer's write to finish."""

COLUMNS: Final = "stored_id, key_id, metadata, created_at, updated_at, status, error"

_TABLE: Final = """
CREATE TABLE IF NOT EXISTS graph_threads (
    stored_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    metadata {json} NOT NULL,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    error TEXT
)
"""

_KEY_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS graph_threads_key ON graph_threads (key_id, created_at)"
)
_METADATA_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS graph_threads_metadata"
    " ON graph_threads USING gin (metadata jsonb_path_ops)"
)

_ORDER: Final[dict[str, str]] = {
    "thread_id": "stored_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "status": "status",
}
"""The column of each `sort_by` (constants only ever reach the SQL)."""


def _record(row: Any, *, parse: bool) -> ThreadRecord:
    metadata = row[2]
    return ThreadRecord(
        stored_id=str(row[0]),
        key_id=str(row[1]),
        metadata=json.loads(metadata) if parse else dict(metadata),
        created_at=float(row[3]),
        updated_at=float(row[4]),
        status=cast(ThreadStatus, str(row[5])),
        error=None if row[6] is None else str(row[6]),
    )


def _order(sort_by: SortBy, sort_order: Literal["asc", "desc"]) -> str:
    direction = "ASC" if sort_order == "asc" else "DESC"
    return f"{_ORDER.get(sort_by, 'created_at')} {direction}, stored_id {direction}"


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
            await conn.execute(_TABLE.format(json="JSONB", real="DOUBLE PRECISION"))
            await conn.execute(_KEY_INDEX)
            await conn.execute(_METADATA_INDEX)

    async def _one(self, query: str, params: tuple[Any, ...]) -> ThreadRecord | None:
        async def run() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchone() if cursor.description else None

        row = await once_more(self._pool, "graph threads", run)
        if row is None:
            return None
        return _record([row[name] for name in COLUMNS.split(", ")], parse=False)

    async def get(self, stored_id: str) -> ThreadRecord | None:
        """See `ThreadRecords.get`."""
        return await self._one(
            f"SELECT {COLUMNS} FROM graph_threads WHERE stored_id = %s",  # noqa: S608 - constant columns  # nosec B608
            (stored_id,),
        )

    async def create(
        self, stored_id: str, key_id: str, metadata: dict[str, Any]
    ) -> ThreadRecord | None:
        """See `ThreadRecords.create`."""
        now = time.time()
        return await self._one(
            f"INSERT INTO graph_threads ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, 'idle', NULL)"  # noqa: S608 - constant columns  # nosec B608
            f" ON CONFLICT (stored_id) DO NOTHING RETURNING {COLUMNS}",
            (stored_id, key_id, Jsonb(metadata), now, now),
        )

    async def stamp(self, stored_id: str, key_id: str, metadata: dict[str, Any]) -> ThreadRecord:
        """See `ThreadRecords.stamp`."""
        now = time.time()
        record = await self._one(
            f"INSERT INTO graph_threads ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, 'idle', NULL)"  # noqa: S608 - constant columns  # nosec B608
            " ON CONFLICT (stored_id) DO UPDATE SET"
            " metadata = graph_threads.metadata || EXCLUDED.metadata,"
            f" updated_at = EXCLUDED.updated_at RETURNING {COLUMNS}",
            (stored_id, key_id, Jsonb(metadata), now, now),
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

    def _where(
        self,
        key_id: str,
        metadata: dict[str, Any] | None,
        status: ThreadStatus | None,
        ids: list[str] | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = ["key_id = %s"]
        params: list[Any] = [key_id]
        if metadata:
            clauses.append("metadata @> %s")
            params.append(Jsonb(metadata))
        if status is not None:
            clauses.append("status = %s")
            params.append(status)
        if ids is not None:
            clauses.append("stored_id = ANY(%s)")
            params.append(ids)
        return " AND ".join(clauses), params

    async def search(
        self,
        key_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
        ids: list[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: SortBy = "created_at",
        sort_order: Literal["asc", "desc"] = "desc",
    ) -> list[ThreadRecord]:
        """See `ThreadRecords.search` (one query on the key's index, or the GIN index)."""
        where, params = self._where(key_id, metadata, status, ids)
        query = (
            f"SELECT {COLUMNS} FROM graph_threads WHERE {where}"  # noqa: S608 - constant clauses  # nosec B608
            f" ORDER BY {_order(sort_by, sort_order)} LIMIT %s OFFSET %s"
        )

        async def run() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, (*params, limit, offset))
                return await cursor.fetchall()

        rows = await once_more(self._pool, "graph threads", run)
        return [_record([row[name] for name in COLUMNS.split(", ")], parse=False) for row in rows]

    async def count(
        self,
        key_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
    ) -> int:
        """See `ThreadRecords.count`."""
        where, params = self._where(key_id, metadata, status, None)

        async def run() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT count(*) AS n FROM graph_threads WHERE {where}",  # noqa: S608 - constant clauses  # nosec B608
                    tuple(params),
                )
                return await cursor.fetchone()

        row = await once_more(self._pool, "graph threads", run)
        return 0 if row is None else int(row["n"])


class SqliteThreadRecords:
    """`graph_threads` in the checkpoints' SQLite file, on a connection of its own.

    A merge reads and writes the row under one lock, so two merges never lose a key.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    async def setup(self) -> None:
        """Create the table if it is missing."""
        await self._conn.execute(_TABLE.format(json="TEXT", real="REAL"))
        await self._conn.execute(_KEY_INDEX)
        await self._conn.commit()

    async def _write(self, query: str, params: tuple[Any, ...]) -> int:
        try:
            cursor = await self._conn.execute(query, params)
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise
        return cursor.rowcount

    async def get(self, stored_id: str) -> ThreadRecord | None:
        """See `ThreadRecords.get`."""
        query = f"SELECT {COLUMNS} FROM graph_threads WHERE stored_id = ?"  # noqa: S608 - constant columns  # nosec B608
        async with self._conn.execute(query, (stored_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _record(row, parse=True)

    async def create(
        self, stored_id: str, key_id: str, metadata: dict[str, Any]
    ) -> ThreadRecord | None:
        """See `ThreadRecords.create`."""
        now = time.time()
        async with self._lock:
            written = await self._write(
                f"INSERT OR IGNORE INTO graph_threads ({COLUMNS})"  # noqa: S608 - constant columns  # nosec B608
                " VALUES (?, ?, ?, ?, ?, 'idle', NULL)",
                (stored_id, key_id, json.dumps(metadata), now, now),
            )
        return await self.get(stored_id) if written else None

    async def stamp(self, stored_id: str, key_id: str, metadata: dict[str, Any]) -> ThreadRecord:
        """See `ThreadRecords.stamp`."""
        record = await self.create(stored_id, key_id, metadata)
        if record is not None:
            return record
        updated = await self.update(stored_id, metadata=metadata)
        assert updated is not None  # nosec B101 - created or present just above
        return updated

    async def update(
        self, stored_id: str, *, metadata: dict[str, Any] | None = None
    ) -> ThreadRecord | None:
        """See `ThreadRecords.update`."""
        async with self._lock:
            record = await self.get(stored_id)
            if record is None:
                return None
            merged = {**record.metadata, **(metadata or {})}
            await self._write(
                "UPDATE graph_threads SET metadata = ?, updated_at = ? WHERE stored_id = ?",
                (json.dumps(merged), time.time(), stored_id),
            )
        return await self.get(stored_id)

    async def set_status(
        self, stored_id: str, status: ThreadStatus, error: str | None = None
    ) -> None:
        """See `ThreadRecords.set_status`."""
        await self._write(
            "UPDATE graph_threads SET status = ?, error = ?, updated_at = ? WHERE stored_id = ?",
            (status, error, time.time(), stored_id),
        )

    async def delete(self, stored_id: str) -> bool:
        """See `ThreadRecords.delete`."""
        return await self._write("DELETE FROM graph_threads WHERE stored_id = ?", (stored_id,)) > 0

    async def search(
        self,
        key_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
        ids: list[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: SortBy = "created_at",
        sort_order: Literal["asc", "desc"] = "desc",
    ) -> list[ThreadRecord]:
        """See `ThreadRecords.search` (the key's rows in order, the metadata matched here)."""
        clauses, params = ["key_id = ?"], [key_id]
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        query = (
            f"SELECT {COLUMNS} FROM graph_threads WHERE {' AND '.join(clauses)}"  # noqa: S608 - constant clauses  # nosec B608
            f" ORDER BY {_order(sort_by, sort_order)}"
        )
        wanted = None if ids is None else set(ids)
        found: list[ThreadRecord] = []
        async with self._conn.execute(query, tuple(params)) as cursor:
            async for row in cursor:
                record = _record(row, parse=True)
                if (wanted is None or record.stored_id in wanted) and matches(record, metadata):
                    found.append(record)
                    if len(found) >= offset + limit:
                        break
        return found[offset:]

    async def count(
        self,
        key_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
    ) -> int:
        """See `ThreadRecords.count`."""
        everything = 2**62
        return len(await self.search(key_id, metadata=metadata, status=status, limit=everything))


@asynccontextmanager
async def open_thread_records(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[ThreadRecords]:
    """The thread records in the database of `saver` (opened by `open_checkpointer`), set up.

    PostgreSQL when the saver runs on a pool, else the SQLite file of SQLITE_PATH.
    """
    pool = connection_pool(saver)
    if pool is not None:
        store = PostgresThreadRecords(pool)
        await store.setup()
        yield store
        return
    path: Path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path), timeout=SQLITE_BUSY_SECONDS) as conn:
        sqlite_store = SqliteThreadRecords(conn)
        await sqlite_store.setup()
        yield sqlite_store
