"""The `images` table beside the checkpoints: each image of every thread, once, by its SHA-256.

Threads keep a reference block per image (`nodes.images`), so the base64 a client resends
every turn is written once, not into every checkpoint. The table lives in the checkpointer's
database: PostgreSQL on the saver's own pool, or the same SQLite file on a connection of its
own (the saver serialises its connection behind its lock; sharing it would interleave
transactions). Rows are immutable: the same digest is the same bytes, so a second save of
an image does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver

from nodes.images import ImageStore, StoredImage
from server.settings import Settings
from server.stores.beside import open_beside_checkpoints
from server.stores.checkpointer import Pool, once_more

logger = logging.getLogger(__name__)

_POSTGRES_TABLE = """
CREATE TABLE IF NOT EXISTS images (
    digest text PRIMARY KEY,
    mime_type text NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

_SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    mime_type TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class PostgresImageStore:
    """Images in PostgreSQL, on the checkpointer's pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def setup(self) -> None:
        """Create the table if it is not there (at start, like the saver's `setup()`)."""
        async with self._pool.connection() as conn:
            await conn.execute(_POSTGRES_TABLE)

    async def save(self, images: Mapping[str, StoredImage]) -> None:
        """Store the images not stored yet, in one transaction (once more if it was cut)."""
        rows = [(digest, image.mime_type, image.data) for digest, image in images.items()]

        async def insert() -> None:
            async with self._pool.connection() as conn, conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO images (digest, mime_type, data) VALUES (%s, %s, %s)"
                    " ON CONFLICT (digest) DO NOTHING",
                    rows,
                )

        await once_more(self._pool, "images save", insert)

    async def load(self, digests: Collection[str]) -> dict[str, StoredImage]:
        """The stored images among `digests`."""

        async def read() -> list[Any]:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT digest, mime_type, data FROM images WHERE digest = ANY(%s)",
                    (list(digests),),
                )
                return await cursor.fetchall()

        rows = await once_more(self._pool, "images read", read)
        return {row["digest"]: StoredImage(row["mime_type"], bytes(row["data"])) for row in rows}


class SqliteImageStore:
    """Images in the checkpoints' SQLite file."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def setup(self) -> None:
        """Create the table if it is not there."""
        await self._conn.execute(_SQLITE_TABLE)
        await self._conn.commit()

    async def save(self, images: Mapping[str, StoredImage]) -> None:
        """Store the images not stored yet, in one transaction."""
        rows = [(digest, image.mime_type, image.data) for digest, image in images.items()]
        await self._conn.executemany(
            "INSERT OR IGNORE INTO images (digest, mime_type, data) VALUES (?, ?, ?)", rows
        )
        await self._conn.commit()

    async def load(self, digests: Collection[str]) -> dict[str, StoredImage]:
        """The stored images among `digests`."""
        wanted = list(digests)
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        query = f"SELECT digest, mime_type, data FROM images WHERE digest IN ({marks})"  # noqa: S608 - placeholders only  # nosec B608
        async with self._conn.execute(query, wanted) as cursor:
            rows = await cursor.fetchall()
        return {str(r[0]): StoredImage(str(r[1]), bytes(r[2])) for r in rows}


@asynccontextmanager
async def open_image_store(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[ImageStore]:
    """The image store in the database of `saver` (opened by `open_checkpointer`), set up.

    PostgreSQL when the saver runs on a pool, else the SQLite file of SQLITE_PATH.
    """
    async with open_beside_checkpoints(
        settings, saver, PostgresImageStore, SqliteImageStore
    ) as store:
        yield store
