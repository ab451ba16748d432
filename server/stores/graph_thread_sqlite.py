"""The LangGraph API's thread records in the SQLite checkpoint file (`graph_threads`).

On a connection of its own, as the response store's; the metadata is JSON text, matched
here by containment (`server.stores.graph_threads.ThreadQuery.admits`): an embedded
service holds few threads. See `server.stores.graph_thread_sql` for PostgreSQL and how the
store is opened.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

import aiosqlite

from server.stores.graph_thread_rows import COLUMNS, KEY_INDEX, TABLE, order_by, record_of
from server.stores.graph_threads import StampAndCount, ThreadQuery, ThreadRecord, ThreadStatus

__all__ = ["SqliteThreadRecords"]


class SqliteThreadRecords(StampAndCount):
    """`graph_threads` in the checkpoints' SQLite file, on a connection of its own.

    A merge reads and writes the row under one lock, so two merges never lose a key.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    async def setup(self) -> None:
        """Create the table if it is missing."""
        await self._conn.execute(TABLE.format(json="TEXT", real="REAL"))
        await self._conn.execute(KEY_INDEX)
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
        return None if row is None else record_of(row, parse=True)

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
        async with self._lock:
            written = await self._write(
                f"INSERT OR IGNORE INTO graph_threads ({COLUMNS})"  # noqa: S608 - constant columns  # nosec B608
                " VALUES (?, ?, ?, ?, ?, 'idle', NULL)",
                (stored_id, key_id, json.dumps(metadata), created_at or now, now),
            )
        return await self.get(stored_id) if written else None

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

    async def search(self, key_id: str, query: ThreadQuery) -> list[ThreadRecord]:
        """See `ThreadRecords.search` (the key's rows in order, the metadata matched here)."""
        clauses, params = ["key_id = ?"], [key_id]
        if query.status is not None:
            clauses.append("status = ?")
            params.append(query.status)
        sql = (
            f"SELECT {COLUMNS} FROM graph_threads WHERE {' AND '.join(clauses)}"  # noqa: S608 - constant clauses  # nosec B608
            f" ORDER BY {order_by(query.sort_by, query.sort_order)}"
        )
        end = query.offset + query.limit
        found: list[ThreadRecord] = []
        async with self._conn.execute(sql, tuple(params)) as cursor:
            async for row in cursor:
                record = record_of(row, parse=True)
                if query.admits(record):
                    found.append(record)
                    if len(found) >= end:
                        break
        return found[query.offset :]
