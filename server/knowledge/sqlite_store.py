"""The embedded store: documents and chunks in a SQLite file, vectors in sqlite-vec's `vec0`.

sqlite-vec ships its extension inside its wheel; it is loaded into `sqlean` (a build of
Python's `sqlite3` module that can load extensions: many Pythons, pyenv's and macOS's among
them, are built without `enable_load_extension`). One connection, used in a worker thread
(`asyncio.to_thread`) behind a lock, so the event loop never waits on the file. The file is
the knowledge base's own (KNOWLEDGE_PATH), not the checkpoints': `make ingest` may write it
while the service reads it (WAL mode, a busy timeout).

`vec0` keeps a chunk's vector under the chunk's rowid, with its namespace as a metadata
column; a search asks for the nearest `k` in each namespace and merges them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlean
import sqlite_vec

from nodes.tools.knowledge import Passage
from server.knowledge.store import (
    Chunk,
    DocumentInfo,
    EmbeddingMismatchError,
    EmbeddingSpec,
    StoredDocument,
)

__all__ = ["SqliteVectorStore"]

T = TypeVar("T")

_TABLES = """
CREATE TABLE IF NOT EXISTS knowledge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS knowledge_documents (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE TABLE IF NOT EXISTS knowledge_chunks (
    rowid INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    document_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS knowledge_chunks_document
    ON knowledge_chunks (namespace, document_id);
"""


class SqliteVectorStore:
    """Documents and chunk vectors in one SQLite file (sqlite-vec)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._conn: sqlean.Connection | None = None
        self._lock = asyncio.Lock()

    async def _run(self, work: Callable[[sqlean.Connection], T]) -> T:
        if self._conn is None:
            raise sqlean.OperationalError("the knowledge store is not open")
        conn = self._conn
        async with self._lock:
            return await asyncio.to_thread(work, conn)

    async def open(self, spec: EmbeddingSpec) -> None:
        """Create the file, tables and vector table if missing; check the embedding spec."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await asyncio.to_thread(self._connect)
        await self._run(lambda conn: self._set_up(conn, spec))

    def _connect(self) -> sqlean.Connection:
        conn = sqlean.connect(str(self.path), timeout=10.0, check_same_thread=False)
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def _set_up(self, conn: sqlean.Connection, spec: EmbeddingSpec) -> None:
        with conn:
            conn.executescript(_TABLES)
            rows = dict(conn.execute("SELECT key, value FROM knowledge_meta").fetchall())
            if rows:
                stored = EmbeddingSpec(str(rows["model"]), int(rows["dimension"]))
                if stored != spec:
                    raise EmbeddingMismatchError(stored, spec, self.where)
            else:
                conn.executemany(
                    "INSERT INTO knowledge_meta (key, value) VALUES (?, ?)",
                    [("model", spec.model), ("dimension", str(spec.dimension))],
                )
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_vectors USING vec0("
                f"namespace TEXT, embedding float[{int(spec.dimension)}] distance_metric=cosine)"
            )

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            async with self._lock:
                await asyncio.to_thread(conn.close)

    async def content_hash(self, namespace: str, document_id: str) -> str | None:
        """The stored document's content hash, or None."""

        def work(conn: sqlean.Connection) -> str | None:
            row = conn.execute(
                "SELECT content_hash FROM knowledge_documents WHERE namespace = ? AND id = ?",
                (namespace, document_id),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def replace(self, document: StoredDocument, chunks: Sequence[Chunk]) -> None:
        """Store the document and its chunks in one transaction, replacing earlier ones."""

        def work(conn: sqlean.Connection) -> None:
            with conn:
                _delete(conn, document.namespace, document.id)
                conn.execute(
                    "INSERT INTO knowledge_documents (namespace, id, title, source, "
                    "content_hash, metadata, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        document.namespace,
                        document.id,
                        document.title,
                        document.source,
                        document.content_hash,
                        json.dumps(document.metadata),
                        datetime.now(UTC).isoformat(),
                    ),
                )
                for chunk in chunks:
                    cursor = conn.execute(
                        "INSERT INTO knowledge_chunks (namespace, document_id, position, text) "
                        "VALUES (?, ?, ?, ?)",
                        (document.namespace, document.id, chunk.position, chunk.text),
                    )
                    conn.execute(
                        "INSERT INTO knowledge_vectors (rowid, namespace, embedding) "
                        "VALUES (?, ?, ?)",
                        (
                            cursor.lastrowid,
                            document.namespace,
                            sqlite_vec.serialize_float32(list(chunk.vector)),
                        ),
                    )

        await self._run(work)

    async def delete(self, namespace: str, document_id: str) -> bool:
        """Delete a document and its chunks; False if there was none."""

        def work(conn: sqlean.Connection) -> bool:
            with conn:
                return _delete(conn, namespace, document_id)

        return await self._run(work)

    async def documents(self, namespace: str | None) -> list[DocumentInfo]:
        """The documents of a namespace (None: all), newest first, with chunk counts."""

        def work(conn: sqlean.Connection) -> list[DocumentInfo]:
            query = (
                "SELECT d.namespace, d.id, d.title, d.source, d.content_hash, d.metadata, "
                "d.updated_at, (SELECT count(*) FROM knowledge_chunks c "
                "WHERE c.namespace = d.namespace AND c.document_id = d.id) "
                "FROM knowledge_documents d"
            )
            params: tuple[str, ...] = ()
            if namespace is not None:
                query += " WHERE d.namespace = ?"
                params = (namespace,)
            rows = conn.execute(query + " ORDER BY d.updated_at DESC, d.id", params).fetchall()
            return [
                DocumentInfo(
                    namespace=row[0],
                    id=row[1],
                    title=row[2],
                    source=row[3],
                    content_hash=row[4],
                    metadata=json.loads(row[5]),
                    updated_at=datetime.fromisoformat(row[6]),
                    chunks=int(row[7]),
                )
                for row in rows
            ]

        return await self._run(work)

    async def counts(self) -> dict[str, int]:
        """Documents per namespace."""

        def work(conn: sqlean.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT namespace, count(*) FROM knowledge_documents GROUP BY namespace"
            ).fetchall()
            return {str(row[0]): int(row[1]) for row in rows}

        return await self._run(work)

    async def nearest(
        self, namespaces: Sequence[str], vector: Sequence[float], k: int
    ) -> list[Passage]:
        """The `k` chunks closest to `vector` in those namespaces, best first."""
        blob = sqlite_vec.serialize_float32(list(vector))

        def work(conn: sqlean.Connection) -> list[Passage]:
            found: list[Passage] = []
            for namespace in dict.fromkeys(namespaces):
                rows = conn.execute(
                    "SELECT c.text, d.id, d.title, d.source, v.distance FROM ("
                    "  SELECT rowid, distance FROM knowledge_vectors"
                    "  WHERE embedding MATCH ? AND k = ? AND namespace = ?"
                    ") v JOIN knowledge_chunks c ON c.rowid = v.rowid "
                    "JOIN knowledge_documents d "
                    "  ON d.namespace = c.namespace AND d.id = c.document_id",
                    (blob, k, namespace),
                ).fetchall()
                found += [
                    Passage(
                        text=row[0],
                        document_id=row[1],
                        title=row[2],
                        source=row[3],
                        score=1.0 - float(row[4]),
                        namespace=namespace,
                    )
                    for row in rows
                ]
            found.sort(key=lambda passage: passage.score, reverse=True)
            return found[:k]

        return await self._run(work)


def _delete(conn: sqlean.Connection, namespace: str, document_id: str) -> bool:
    rowids = [
        row[0]
        for row in conn.execute(
            "SELECT rowid FROM knowledge_chunks WHERE namespace = ? AND document_id = ?",
            (namespace, document_id),
        )
    ]
    conn.executemany("DELETE FROM knowledge_vectors WHERE rowid = ?", [(r,) for r in rowids])
    conn.execute(
        "DELETE FROM knowledge_chunks WHERE namespace = ? AND document_id = ?",
        (namespace, document_id),
    )
    cursor = conn.execute(
        "DELETE FROM knowledge_documents WHERE namespace = ? AND id = ?",
        (namespace, document_id),
    )
    deleted: int = cursor.rowcount
    return deleted > 0
