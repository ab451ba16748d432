"""The `responses` table: what each stored Responses API response names, by its `resp_...` id.

A response id names a checkpoint: the row holds the caller's key id, the thread the response
continued (its stored id), the checkpoint its run ended on, and what `GET /v1/responses/{id}`
and `/input_items` answer with (the response object as returned, its input items). It lives
in the checkpointer's database, so it survives a restart and every replica reads the same
rows: PostgreSQL on the checkpointer's own pool when DATABASE_URL is set, else the SQLite
checkpoint file on a connection of its own (as `server.ops.images` and the usage table do).

A row is written once, when its run has ended, and never changed; `DELETE` removes the row
(the thread's checkpoints stay: later responses of the conversation may stand on them).
Every read and delete names the key: another key's response is as absent as an unknown one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.types.json import Jsonb

from server.ops.checkpointer import Pool, connection_pool, once_more
from server.settings import Settings

SQLITE_BUSY_SECONDS: Final = 5.0
"""How long a SQLite write waits for the checkpointer's write to finish."""

_POSTGRES_TABLE: Final = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    response JSONB NOT NULL,
    input_items JSONB NOT NULL,
    metadata JSONB NOT NULL
)
"""

_SQLITE_TABLE: Final = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    metadata TEXT NOT NULL
)
"""

_THREAD_INDEX: Final = "CREATE INDEX IF NOT EXISTS responses_thread ON responses (thread_id)"
"""Retention deletes a thread's responses with its checkpoints."""

_LATEST: Final = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = ''"
    " ORDER BY checkpoint_id DESC LIMIT 1"
)
"""The newest checkpoint of a thread, from the checkpointer's own table (the query its
`aget_tuple` runs, without loading the checkpoint: a turn's record costs the same on a
long thread as on a new one)."""

_COLUMNS: Final = (
    "id, key_id, thread_id, checkpoint_id, model, created_at, response, input_items, metadata"
)


@dataclass(frozen=True)
class StoredResponse:
    """One row: a response, the checkpoint it names, and what it answers with."""

    id: str
    key_id: str
    """The API key id (`Caller.key_id`) that created it: only that key reads or deletes it."""
    thread_id: str
    """The thread the response is part of, as stored (scoped to the key)."""
    checkpoint_id: str
    """The checkpoint the response's run ended on: what `previous_response_id` continues."""
    model: str
    created_at: float
    response: dict[str, Any]
    """The response object exactly as it was returned."""
    input_items: list[dict[str, Any]] = field(default_factory=list)
    """The request's input items, as `GET /v1/responses/{id}/input_items` lists them."""
    metadata: dict[str, str] = field(default_factory=dict)


class ResponseStore(Protocol):
    """Where responses are kept; shared by every replica on the same database."""

    async def save(self, record: StoredResponse) -> None:
        """Store a response (once, when its run has ended)."""
        ...

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The key's response of that id, or None (unknown, deleted, or another key's)."""
        ...

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Remove the key's response of that id; False when there was none."""
        ...

    async def latest_checkpoint(self, thread_id: str) -> str | None:
        """The id of the thread's newest checkpoint in the same database, or None."""
        ...

    async def forget_thread(self, thread_id: str) -> int:
        """Remove every response of a thread (retention deleted it); how many went."""
        ...


def _row(record: StoredResponse) -> tuple[str, str, str, str, str, float]:
    return (
        record.id,
        record.key_id,
        record.thread_id,
        record.checkpoint_id,
        record.model,
        record.created_at,
    )


def _record(row: Any, *, parse: bool) -> StoredResponse:
    def value(data: Any) -> Any:
        return json.loads(data) if parse else data

    return StoredResponse(
        id=str(row[0]),
        key_id=str(row[1]),
        thread_id=str(row[2]),
        checkpoint_id=str(row[3]),
        model=str(row[4]),
        created_at=float(row[5]),
        response=value(row[6]),
        input_items=value(row[7]),
        metadata=value(row[8]),
    )


class PostgresResponseStore:
    """The `responses` table in PostgreSQL, on the checkpointer's pool.

    Every query runs once more on a new connection when its connection was lost (a restart
    during a request: `once_more`); each is safe to repeat (the insert does nothing when
    the row landed the first time).
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def setup(self) -> None:
        """Create the table if it is missing (at start, like the saver's `setup()`)."""
        async with self._pool.connection() as conn:
            await conn.execute(_POSTGRES_TABLE)
            await conn.execute(_THREAD_INDEX)

    async def save(self, record: StoredResponse) -> None:
        """Insert the row."""
        params = (
            *_row(record),
            Jsonb(record.response),
            Jsonb(record.input_items),
            Jsonb(record.metadata),
        )
        query = (
            f"INSERT INTO responses ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608 - constant columns  # nosec B608
            " ON CONFLICT (id) DO NOTHING"
        )

        async def insert() -> None:
            async with self._pool.connection() as conn:
                await conn.execute(query, params)

        await once_more(self._pool, "responses save", insert)

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The key's row of that id."""

        async def read() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM responses WHERE id = %s AND key_id = %s",  # noqa: S608 - constant columns  # nosec B608
                    (response_id, key_id),
                )
                return await cursor.fetchone()

        row = await once_more(self._pool, "responses read", read)
        if row is None:
            return None
        return _record([row[name] for name in _COLUMNS.split(", ")], parse=False)

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Delete the key's row of that id."""
        return (
            await self._count(
                "DELETE FROM responses WHERE id = %s AND key_id = %s", (response_id, key_id)
            )
            > 0
        )

    async def forget_thread(self, thread_id: str) -> int:
        """Delete the thread's rows."""
        return await self._count("DELETE FROM responses WHERE thread_id = %s", (thread_id,))

    async def latest_checkpoint(self, thread_id: str) -> str | None:
        """The id of the thread's newest checkpoint (`checkpoints`, the saver's table)."""

        async def read() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(_LATEST, (thread_id,))
                return await cursor.fetchone()

        row = await once_more(self._pool, "responses read", read)
        return None if row is None else str(row["checkpoint_id"])

    async def _count(self, query: str, params: tuple[str, ...]) -> int:
        """Run a delete; how many rows went."""

        async def delete() -> int:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return cursor.rowcount

        # A delete that landed before the connection broke finds nothing the second time.
        return await once_more(self._pool, "responses delete", delete)


class SqliteResponseStore:
    """The `responses` table in the checkpoints' SQLite file, on a connection of its own."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def setup(self) -> None:
        """Create the table if it is missing."""
        await self._conn.execute(_SQLITE_TABLE)
        await self._conn.execute(_THREAD_INDEX)
        await self._conn.commit()

    async def save(self, record: StoredResponse) -> None:
        """Insert the row."""
        params = (
            *_row(record),
            json.dumps(record.response),
            json.dumps(record.input_items),
            json.dumps(record.metadata),
        )
        try:
            await self._conn.execute(
                f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns  # nosec B608
                params,
            )
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The key's row of that id."""
        query = f"SELECT {_COLUMNS} FROM responses WHERE id = ? AND key_id = ?"  # noqa: S608 - constant columns  # nosec B608
        async with self._conn.execute(query, (response_id, key_id)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _record(row, parse=True)

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Delete the key's row of that id."""
        try:
            cursor = await self._conn.execute(
                "DELETE FROM responses WHERE id = ? AND key_id = ?", (response_id, key_id)
            )
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise
        return cursor.rowcount > 0

    async def forget_thread(self, thread_id: str) -> int:
        """Delete the thread's rows."""
        try:
            cursor = await self._conn.execute(
                "DELETE FROM responses WHERE thread_id = ?", (thread_id,)
            )
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise
        return cursor.rowcount

    async def latest_checkpoint(self, thread_id: str) -> str | None:
        """The id of the thread's newest checkpoint (`checkpoints`, the saver's table).

        The saver commits each checkpoint, and the file is in WAL mode: this connection
        sees it as soon as the run has ended.
        """
        async with self._conn.execute(_LATEST.replace("%s", "?"), (thread_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])


@asynccontextmanager
async def open_response_store(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[ResponseStore]:
    """The response store in the database of `saver` (opened by `open_checkpointer`), set up.

    PostgreSQL when the saver runs on a pool, else the SQLite file of SQLITE_PATH.
    """
    pool = connection_pool(saver)
    if pool is not None:
        store = PostgresResponseStore(pool)
        await store.setup()
        yield store
        return
    path: Path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path), timeout=SQLITE_BUSY_SECONDS) as conn:
        sqlite_store = SqliteResponseStore(conn)
        await sqlite_store.setup()
        yield sqlite_store
