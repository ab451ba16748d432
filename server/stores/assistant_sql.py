"""The assistants' tables, in PostgreSQL (the checkpointer's pool) or the SQLite checkpoint file.

`assistant_versions` holds every version of every assistant, by key, id and number;
`assistants` names, per key and id, which version is the latest and when it became so. A
version row is written once and never changed; `PATCH` adds one, "set latest" moves the
pointer, `DELETE` removes the assistant's rows. Both tables are read and written in one
transaction per operation; a key's assistants are few, so listing reads them all.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any, Protocol

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg.types.json import Jsonb

from server.settings import Settings
from server.stores.assistants import AssistantPatch, AssistantStore, StoredAssistant, now_iso
from server.stores.beside import open_beside_checkpoints
from server.stores.checkpointer import Pool, once_more

__all__ = ["PostgresAssistants", "SqliteAssistants", "open_assistant_store"]

_TABLES = (
    """CREATE TABLE IF NOT EXISTS assistant_versions (
        key_id TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        graph_id TEXT NOT NULL,
        config {json} NOT NULL,
        context {json} NOT NULL,
        metadata {json} NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (key_id, assistant_id, version)
    )""",
    """CREATE TABLE IF NOT EXISTS assistants (
        key_id TEXT NOT NULL,
        assistant_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (key_id, assistant_id)
    )""",
)

_VERSION_COLUMNS = (
    "assistant_id, graph_id, version, config, context, metadata, name, description, "
    "created_at, updated_at"
)

_LATEST = (
    "SELECT v.assistant_id, v.graph_id, v.version, v.config, v.context, v.metadata, v.name,"
    " v.description, v.created_at, a.updated_at"
    " FROM assistants a JOIN assistant_versions v ON v.key_id = a.key_id"
    " AND v.assistant_id = a.assistant_id AND v.version = a.version WHERE a.key_id = %s"
)

_INSERT_VERSION = (
    f"INSERT INTO assistant_versions (key_id, {_VERSION_COLUMNS})"  # noqa: S608 - constant columns  # nosec B608
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _parsed(value: Any) -> Any:
    """A JSON column's value: PostgreSQL's JSONB comes parsed, SQLite's text does not."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _record(row: Sequence[Any]) -> StoredAssistant:
    return StoredAssistant(
        assistant_id=str(row[0]),
        graph_id=str(row[1]),
        version=int(row[2]),
        config=_parsed(row[3]),
        context=_parsed(row[4]),
        metadata=_parsed(row[5]),
        name=str(row[6]),
        description=None if row[7] is None else str(row[7]),
        created_at=str(row[8]),
        updated_at=str(row[9]),
    )


class _Transaction(Protocol):
    """The queries of one transaction, in PostgreSQL's placeholder style (`%s`)."""

    async def one(self, query: str, params: Sequence[Any]) -> Sequence[Any] | None: ...
    async def all(self, query: str, params: Sequence[Any]) -> list[Sequence[Any]]: ...
    async def run(self, query: str, params: Sequence[Any]) -> int: ...


class _SqlAssistants(ABC):
    """The operations, over a transaction of either database."""

    @abstractmethod
    def _transaction(self, operation: str) -> AbstractAsyncContextManager[_Transaction]:
        """An async context manager of a `_Transaction`, committed on a clean exit."""

    @abstractmethod
    def _json(self, value: Any) -> Any:
        """A value for a JSON column."""

    def _version_row(self, key_id: str, record: StoredAssistant) -> tuple[Any, ...]:
        return (
            key_id,
            record.assistant_id,
            record.graph_id,
            record.version,
            self._json(record.config),
            self._json(record.context),
            self._json(record.metadata),
            record.name,
            record.description,
            record.created_at,
            record.updated_at,
        )

    async def create(self, key_id: str, record: StoredAssistant) -> bool:
        """Store version 1, unless the id is taken (then nothing is written)."""
        async with self._transaction("create") as tx:
            taken = await tx.run(
                "INSERT INTO assistants (key_id, assistant_id, version, updated_at)"
                " VALUES (%s, %s, 1, %s) ON CONFLICT DO NOTHING",
                (key_id, record.assistant_id, record.updated_at),
            )
            if taken == 0:
                return False
            await tx.run(_INSERT_VERSION, self._version_row(key_id, _first(record)))
            return True

    async def get(self, key_id: str, assistant_id: str) -> StoredAssistant | None:
        """The latest version."""
        async with self._transaction("read") as tx:
            row = await tx.one(f"{_LATEST} AND a.assistant_id = %s", (key_id, assistant_id))
        return None if row is None else _record(row)

    async def of_key(self, key_id: str) -> list[StoredAssistant]:
        """The key's assistants at their latest versions."""
        async with self._transaction("read") as tx:
            rows = await tx.all(_LATEST, (key_id,))
        return [_record(row) for row in rows]

    async def update(
        self, key_id: str, assistant_id: str, patch: AssistantPatch
    ) -> StoredAssistant | None:
        """A new version from the latest, made the latest."""
        async with self._transaction("update") as tx:
            locked = await self._lock(tx, key_id, assistant_id)
            if locked is None:
                return None
            row = await tx.one(f"{_LATEST} AND a.assistant_id = %s", (key_id, assistant_id))
            top = await tx.one(
                "SELECT MAX(version) FROM assistant_versions WHERE key_id = %s"
                " AND assistant_id = %s",
                (key_id, assistant_id),
            )
            if row is None or top is None:
                return None
            record = patch.apply(_record(row), int(top[0]) + 1, now_iso())
            await tx.run(_INSERT_VERSION, self._version_row(key_id, record))
            await tx.run(
                "UPDATE assistants SET version = %s, updated_at = %s"
                " WHERE key_id = %s AND assistant_id = %s",
                (record.version, record.updated_at, key_id, assistant_id),
            )
            return record

    async def versions(self, key_id: str, assistant_id: str) -> list[StoredAssistant]:
        """Newest first."""
        async with self._transaction("read") as tx:
            rows = await tx.all(
                f"SELECT {_VERSION_COLUMNS} FROM assistant_versions"  # noqa: S608 - constant columns  # nosec B608
                " WHERE key_id = %s AND assistant_id = %s ORDER BY version DESC",
                (key_id, assistant_id),
            )
        return [_record(row) for row in rows]

    async def set_latest(
        self, key_id: str, assistant_id: str, version: int
    ) -> StoredAssistant | None:
        """Point the latest at `version`, if the assistant has it."""
        now = now_iso()
        async with self._transaction("update") as tx:
            moved = await tx.run(
                "UPDATE assistants SET version = %s, updated_at = %s"
                " WHERE key_id = %s AND assistant_id = %s AND EXISTS (SELECT 1 FROM"
                " assistant_versions v WHERE v.key_id = %s AND v.assistant_id = %s"
                " AND v.version = %s)",
                (version, now, key_id, assistant_id, key_id, assistant_id, version),
            )
            if moved == 0:
                return None
            row = await tx.one(f"{_LATEST} AND a.assistant_id = %s", (key_id, assistant_id))
        return None if row is None else _record(row)

    async def delete(self, key_id: str, assistant_id: str) -> bool:
        """Remove the pointer and every version."""
        async with self._transaction("delete") as tx:
            await tx.run(
                "DELETE FROM assistant_versions WHERE key_id = %s AND assistant_id = %s",
                (key_id, assistant_id),
            )
            gone = await tx.run(
                "DELETE FROM assistants WHERE key_id = %s AND assistant_id = %s",
                (key_id, assistant_id),
            )
        return gone > 0

    async def _lock(self, tx: _Transaction, key_id: str, assistant_id: str) -> Any:
        """The assistant's pointer row, held until the transaction ends (PostgreSQL)."""
        return await tx.one(
            "SELECT version FROM assistants WHERE key_id = %s AND assistant_id = %s",
            (key_id, assistant_id),
        )


def _first(record: StoredAssistant) -> StoredAssistant:
    return replace(record, version=1)


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def one(self, query: str, params: Sequence[Any]) -> Sequence[Any] | None:
        cursor = await self._conn.execute(query, params)
        row = await cursor.fetchone()
        return None if row is None else tuple(row.values())

    async def all(self, query: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        cursor = await self._conn.execute(query, params)
        return [tuple(row.values()) for row in await cursor.fetchall()]

    async def run(self, query: str, params: Sequence[Any]) -> int:
        cursor = await self._conn.execute(query, params)
        return int(cursor.rowcount)


class PostgresAssistants(_SqlAssistants):
    """The tables in PostgreSQL, on the checkpointer's pool.

    A read whose connection was lost runs once more on a new one (`once_more`), and so does
    `create` (one transaction: the first attempt left all or nothing; had it landed, the
    second finds the id taken). The other writes are not repeated: a second new version
    would be one too many.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def setup(self) -> None:
        """Create the tables if they are missing."""
        async with self._pool.connection() as conn:
            for table in _TABLES:
                await conn.execute(table.format(json="JSONB"))

    def _json(self, value: Any) -> Any:
        return Jsonb(value)

    @asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[_Transaction]:
        async with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTransaction(conn)

    async def _lock(self, tx: _Transaction, key_id: str, assistant_id: str) -> Any:
        return await tx.one(
            "SELECT version FROM assistants WHERE key_id = %s AND assistant_id = %s FOR UPDATE",
            (key_id, assistant_id),
        )

    async def create(self, key_id: str, record: StoredAssistant) -> bool:
        """Store version 1 (once more on a lost connection)."""
        create = super().create
        return await once_more(self._pool, "assistants write", lambda: create(key_id, record))

    async def get(self, key_id: str, assistant_id: str) -> StoredAssistant | None:
        """The latest version (once more on a lost connection)."""
        get = super().get
        return await once_more(self._pool, "assistants read", lambda: get(key_id, assistant_id))

    async def of_key(self, key_id: str) -> list[StoredAssistant]:
        """The key's assistants (once more on a lost connection)."""
        list_ = super().of_key
        return await once_more(self._pool, "assistants read", lambda: list_(key_id))

    async def versions(self, key_id: str, assistant_id: str) -> list[StoredAssistant]:
        """Every version, newest first (once more on a lost connection)."""
        versions = super().versions
        return await once_more(
            self._pool, "assistants read", lambda: versions(key_id, assistant_id)
        )


class _SqliteTransaction:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def one(self, query: str, params: Sequence[Any]) -> Sequence[Any] | None:
        async with self._conn.execute(query.replace("%s", "?"), params) as cursor:
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def all(self, query: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        async with self._conn.execute(query.replace("%s", "?"), params) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def run(self, query: str, params: Sequence[Any]) -> int:
        cursor = await self._conn.execute(query.replace("%s", "?"), params)
        return int(cursor.rowcount)


class SqliteAssistants(_SqlAssistants):
    """The tables in the checkpoints' SQLite file, on a connection of its own.

    The connection is this process's only writer of the tables; a lock keeps one
    operation's transaction from interleaving with another's.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock_ = asyncio.Lock()

    async def setup(self) -> None:
        """Create the tables if they are missing."""
        for table in _TABLES:
            await self._conn.execute(table.format(json="TEXT"))
        await self._conn.commit()

    def _json(self, value: Any) -> Any:
        return json.dumps(value)

    @asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[_Transaction]:
        async with self._lock_:
            done = False
            try:
                yield _SqliteTransaction(self._conn)
                done = True
            finally:
                await (self._conn.commit() if done else self._conn.rollback())


@asynccontextmanager
async def open_assistant_store(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[AssistantStore]:
    """The assistants' tables in the database of `saver` (opened by `open_checkpointer`).

    PostgreSQL when the saver runs on a pool, else the SQLite file of SQLITE_PATH; the tables
    are created if missing.
    """
    async with open_beside_checkpoints(
        settings, saver, PostgresAssistants, SqliteAssistants
    ) as store:
        yield store
