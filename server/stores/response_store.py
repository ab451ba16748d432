"""The `responses` table: what each stored Responses API response names, by its `resp_...` id.

A response id names a checkpoint: the row holds the caller's key id, the thread the response
continued (its stored id), the checkpoint its run ended on, and what `GET /v1/responses/{id}`
and `/input_items` answer with (the response object as returned, its input items). It lives
in the checkpointer's database, so it survives a restart and every replica reads the same
rows: PostgreSQL on the checkpointer's own pool when DATABASE_URL is set, else the SQLite
checkpoint file on a connection of its own (as `server.stores.images` and the usage table do).

A row is written once, when its run has ended, and never changed; `DELETE` removes the row
(the thread's checkpoints stay: later responses of the conversation may stand on them).
Every read and delete names the key: another key's response is as absent as an unknown one.

Beside it, `response_items` indexes every item of a stored response (its input items and its
output items, by their `msg_…`, `fc_…`, `rs_…` ids) for the key, so that a request's
`item_reference` resolves with one indexed query; it is written with its response and goes
with it. Rows stored before the index existed are indexed once, when the table is created.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.types.json import Jsonb

from server.settings import Settings
from server.stores.beside import open_beside_checkpoints
from server.stores.checkpointer import Pool, once_more
from server.stores.response_sql import (
    COLUMNS,
    ITEMS_INDEX,
    ITEMS_TABLE,
    LATEST,
    POSTGRES_BACKFILL,
    POSTGRES_TABLE,
    SQLITE_BACKFILL,
    SQLITE_TABLE,
    THREAD_INDEX,
)

SQLITE_BATCH: Final = 500
"""Item ids looked up per SQLite query (far below its limit of bound variables)."""


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

    def items(self) -> list[dict[str, Any]]:
        """Its input and output items that have an id: what `item_reference` can name."""
        output = self.response.get("output") or []
        return [item for item in [*self.input_items, *output] if item.get("id")]


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

    async def items(self, item_ids: list[str], key_id: str) -> dict[str, dict[str, Any]]:
        """The key's stored items of those ids, by id (an unknown id is left out)."""
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
            await conn.execute(POSTGRES_TABLE)
            await conn.execute(THREAD_INDEX)
            cursor = await conn.execute("SELECT to_regclass('response_items') AS t")
            row = await cursor.fetchone()
            await conn.execute(ITEMS_TABLE.format(json="JSONB"))
            await conn.execute(ITEMS_INDEX)
            if row is None or row["t"] is None:  # just created: index the rows stored before
                await conn.execute(POSTGRES_BACKFILL)

    async def save(self, record: StoredResponse) -> None:
        """Insert the row."""
        params = (
            *_row(record),
            Jsonb(record.response),
            Jsonb(record.input_items),
            Jsonb(record.metadata),
        )
        query = (
            f"INSERT INTO responses ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608 - constant columns  # nosec B608
            " ON CONFLICT (id) DO NOTHING"
        )
        items = [(record.key_id, item["id"], record.id, Jsonb(item)) for item in record.items()]

        async def insert() -> None:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(query, params)
                async with conn.cursor() as cursor:
                    await cursor.executemany(
                        "INSERT INTO response_items (key_id, id, response_id, item)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        items,
                    )

        await once_more(self._pool, "responses save", insert)

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The key's row of that id."""

        async def read() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {COLUMNS} FROM responses WHERE id = %s AND key_id = %s",  # noqa: S608 - constant columns  # nosec B608
                    (response_id, key_id),
                )
                return await cursor.fetchone()

        row = await once_more(self._pool, "responses read", read)
        if row is None:
            return None
        return _record([row[name] for name in COLUMNS.split(", ")], parse=False)

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Delete the key's row of that id, and its items."""
        return (
            await self._count(
                "DELETE FROM responses WHERE id = %s AND key_id = %s",
                (response_id, key_id),
                "DELETE FROM response_items WHERE response_id = %s AND key_id = %s",
            )
            > 0
        )

    async def forget_thread(self, thread_id: str) -> int:
        """Delete the thread's rows, and their items."""
        return await self._count(
            "DELETE FROM responses WHERE thread_id = %s",
            (thread_id,),
            "DELETE FROM response_items WHERE response_id IN"
            " (SELECT id FROM responses WHERE thread_id = %s)",
        )

    async def items(self, item_ids: list[str], key_id: str) -> dict[str, dict[str, Any]]:
        """The key's items of those ids (one indexed query)."""

        async def read() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT id, item FROM response_items WHERE key_id = %s AND id = ANY(%s)",
                    (key_id, item_ids),
                )
                return await cursor.fetchall()

        rows = await once_more(self._pool, "responses read", read)
        return {str(row["id"]): row["item"] for row in rows}

    async def latest_checkpoint(self, thread_id: str) -> str | None:
        """The id of the thread's newest checkpoint (`checkpoints`, the saver's table)."""

        async def read() -> Any:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(LATEST, (thread_id,))
                return await cursor.fetchone()

        row = await once_more(self._pool, "responses read", read)
        return None if row is None else str(row["checkpoint_id"])

    async def _count(self, query: str, params: tuple[str, ...], items: str) -> int:
        """Run a delete of responses after `items`, the delete of their items; how many went."""

        async def delete() -> int:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(items, params)
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
        await self._conn.execute(SQLITE_TABLE)
        await self._conn.execute(THREAD_INDEX)
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'response_items'"
        async with self._conn.execute(query) as cursor:
            existed = await cursor.fetchone() is not None
        await self._conn.execute(ITEMS_TABLE.format(json="TEXT"))
        await self._conn.execute(ITEMS_INDEX)
        if not existed:  # just created: index the rows stored before
            await self._conn.execute(SQLITE_BACKFILL)
        await self._conn.commit()

    async def save(self, record: StoredResponse) -> None:
        """Insert the row."""
        params = (
            *_row(record),
            json.dumps(record.response),
            json.dumps(record.input_items),
            json.dumps(record.metadata),
        )
        items = [
            (record.key_id, item["id"], record.id, json.dumps(item)) for item in record.items()
        ]
        try:
            await self._conn.execute(
                f"INSERT INTO responses ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns  # nosec B608
                params,
            )
            await self._conn.executemany(
                "INSERT OR IGNORE INTO response_items (key_id, id, response_id, item)"
                " VALUES (?, ?, ?, ?)",
                items,
            )
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The key's row of that id."""
        query = f"SELECT {COLUMNS} FROM responses WHERE id = ? AND key_id = ?"  # noqa: S608 - constant columns  # nosec B608
        async with self._conn.execute(query, (response_id, key_id)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _record(row, parse=True)

    async def delete(self, response_id: str, key_id: str) -> bool:
        """Delete the key's row of that id."""
        try:
            await self._conn.execute(
                "DELETE FROM response_items WHERE response_id = ? AND key_id = ?",
                (response_id, key_id),
            )
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
            await self._conn.execute(
                "DELETE FROM response_items WHERE response_id IN"
                " (SELECT id FROM responses WHERE thread_id = ?)",
                (thread_id,),
            )
            cursor = await self._conn.execute(
                "DELETE FROM responses WHERE thread_id = ?", (thread_id,)
            )
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise
        return cursor.rowcount

    async def items(self, item_ids: list[str], key_id: str) -> dict[str, dict[str, Any]]:
        """The key's items of those ids (an indexed query a batch of SQLite's variables)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(item_ids), SQLITE_BATCH):
            batch = item_ids[start : start + SQLITE_BATCH]
            marks = ", ".join("?" * len(batch))
            query = f"SELECT id, item FROM response_items WHERE key_id = ? AND id IN ({marks})"  # noqa: S608 - placeholders only  # nosec B608
            async with self._conn.execute(query, (key_id, *batch)) as cursor:
                found.update({str(row[0]): json.loads(row[1]) for row in await cursor.fetchall()})
        return found

    async def latest_checkpoint(self, thread_id: str) -> str | None:
        """The id of the thread's newest checkpoint (`checkpoints`, the saver's table).

        The saver commits each checkpoint, and the file is in WAL mode: this connection
        sees it as soon as the run has ended.
        """
        async with self._conn.execute(LATEST.replace("%s", "?"), (thread_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])


@asynccontextmanager
async def open_response_store(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[ResponseStore]:
    """The response store in the database of `saver` (opened by `open_checkpointer`), set up.

    PostgreSQL when the saver runs on a pool, else the SQLite file of SQLITE_PATH.
    """
    async with open_beside_checkpoints(
        settings, saver, PostgresResponseStore, SqliteResponseStore
    ) as store:
        yield store
