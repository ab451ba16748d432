"""The PostgreSQL store: documents and chunks in the checkpointer's database, vectors in pgvector.

It runs on the checkpointer's psycopg pool (`connection_pool(saver)`): no second pool, no
second set of connection settings. Every call goes through `once_more`, like the other tables
beside the checkpoints (images, responses), so a connection lost to a restart is retried once
on a new one; each call is safe to run twice (reads, a delete, a replace in one transaction).

`open()` runs `CREATE EXTENSION IF NOT EXISTS vector`, which needs pgvector installed on the
server and, the first time in a database, the privilege to create it (a superuser, or the
database owner on PostgreSQL 13+ since pgvector is a trusted extension). Without it the
driver's error is raised as psycopg gives it (`UndefinedFile` or `FeatureNotSupported`: not
installed; `InsufficientPrivilege`: not allowed), after a log line that says what to do;
`open_knowledge` catches it (`STORE_ERRORS`) and the service runs without a knowledge base.

Tables: `knowledge_meta` (the embedding model and dimension, checked at every open),
`knowledge_documents` (one row per namespace and id) and `knowledge_chunks` (text and a
`vector(N)` column, N the recorded dimension; deleting a document cascades to its chunks),
with an HNSW index on the vectors (`vector_cosine_ops`, so `<=>` is the cosine distance and a
passage's score is 1 - distance, as in the SQLite store). pgvector indexes `vector` columns of
up to 2000 dimensions: a larger embedding gets no index (logged) and exact, slower search.
The set-up runs in one transaction under an advisory lock, so `make ingest` and the service
starting at once do not race to create the tables or to record two specs.

Vectors travel as text literals (`'[0.1,0.2,...]'::vector`) rather than through the
`pgvector` package's psycopg adapter: the adapter must be registered on every connection,
and this pool is the checkpointer's, so registering it at checkout would cost each checkpoint
a round trip (or every connection the knowledge base's type). Vectors only go in (a search
returns text and distances, never vectors), so the text form costs nothing on the way out.

Bound: pgvector (before 0.8's iterative scans) filters an HNSW scan's candidates by namespace
after the index found them (`hnsw.ef_search`, 40 by default), so a namespace that holds a
small share of many chunks may get fewer than `k` passages. Small tables are searched exactly
(the planner prefers a sequential scan).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from nodes.tools.knowledge import Passage
from server.knowledge.store import (
    Chunk,
    DocumentInfo,
    EmbeddingMismatchError,
    EmbeddingSpec,
    StoredDocument,
)
from server.stores.checkpointer import Pool, once_more

__all__ = ["MAX_INDEXED_DIMENSION", "PostgresVectorStore", "vector_literal"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The most dimensions pgvector's HNSW index takes on a `vector` column.
MAX_INDEXED_DIMENSION: Final = 2000

#: The advisory lock the set-up holds (any constant of this service's own).
_SETUP_LOCK: Final = 0x6B6E6F77  # "know"

_META = """
CREATE TABLE IF NOT EXISTS knowledge_meta (
    key text PRIMARY KEY,
    value text NOT NULL
)
"""

_DOCUMENTS = """
CREATE TABLE IF NOT EXISTS knowledge_documents (
    namespace text NOT NULL,
    id text NOT NULL,
    title text NOT NULL,
    source text,
    content_hash text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (namespace, id)
)
"""

_CHUNKS = """
CREATE TABLE IF NOT EXISTS knowledge_chunks (
    id bigserial PRIMARY KEY,
    namespace text NOT NULL,
    document_id text NOT NULL,
    position integer NOT NULL,
    text text NOT NULL,
    embedding vector({dimension}) NOT NULL,
    FOREIGN KEY (namespace, document_id)
        REFERENCES knowledge_documents (namespace, id) ON DELETE CASCADE
)
"""

_CHUNKS_BY_DOCUMENT = """
CREATE INDEX IF NOT EXISTS knowledge_chunks_document
    ON knowledge_chunks (namespace, document_id)
"""

_HNSW = """
CREATE INDEX IF NOT EXISTS knowledge_chunks_embedding
    ON knowledge_chunks USING hnsw (embedding vector_cosine_ops)
"""

_MISSING_EXTENSION = (errors.UndefinedFile, errors.FeatureNotSupported)


def vector_literal(vector: Sequence[float]) -> str:
    """The text form pgvector reads (`[0.1,0.2]`): `repr` keeps every digit of a float."""
    return "[" + ",".join(repr(float(value)) for value in vector) + "]"


class PostgresVectorStore:
    """Documents and chunk vectors in PostgreSQL (pgvector), on the checkpointer's pool."""

    where = "PostgreSQL"

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def _once_more(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await once_more(self._pool, f"knowledge {operation}", call)

    async def open(self, spec: EmbeddingSpec) -> None:
        """Create the extension, tables and index if missing; record or check the spec.

        Raises:
            EmbeddingMismatchError: The tables hold vectors of another spec.
            psycopg.Error: pgvector is not installed (`UndefinedFile`,
                `FeatureNotSupported`) or may not be created (`InsufficientPrivilege`).
        """

        async def set_up() -> None:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                await _create_extension(conn)
                await conn.execute(_META)
                cursor = await conn.execute("SELECT key, value FROM knowledge_meta")
                rows = {row["key"]: row["value"] for row in await cursor.fetchall()}
                if rows:
                    stored = EmbeddingSpec(str(rows["model"]), int(rows["dimension"]))
                    if stored != spec:
                        raise EmbeddingMismatchError(stored, spec, self.where)
                else:
                    async with conn.cursor() as insert:
                        await insert.executemany(
                            "INSERT INTO knowledge_meta (key, value) VALUES (%s, %s)",
                            [("model", spec.model), ("dimension", str(spec.dimension))],
                        )
                await conn.execute(_DOCUMENTS)
                chunks = sql.SQL(_CHUNKS).format(dimension=sql.Literal(int(spec.dimension)))
                await conn.execute(chunks)
                await conn.execute(_CHUNKS_BY_DOCUMENT)
                if spec.dimension <= MAX_INDEXED_DIMENSION:
                    await conn.execute(_HNSW)
                else:
                    logger.warning(
                        "knowledge base: %d dimensions is more than pgvector's HNSW index "
                        "takes (%d); searches scan every chunk",
                        spec.dimension,
                        MAX_INDEXED_DIMENSION,
                    )

        await self._once_more("open", set_up)
        logger.info("knowledge base in PostgreSQL (pgvector)")

    async def close(self) -> None:
        """Nothing to release: the pool is the checkpointer's."""

    async def content_hash(self, namespace: str, document_id: str) -> str | None:
        """The stored document's content hash, or None."""

        async def read() -> str | None:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT content_hash FROM knowledge_documents WHERE namespace = %s AND id = %s",
                    (namespace, document_id),
                )
                row = await cursor.fetchone()
            return None if row is None else str(row["content_hash"])

        return await self._once_more("read", read)

    async def replace(self, document: StoredDocument, chunks: Sequence[Chunk]) -> None:
        """Store the document and its chunks in one transaction, replacing earlier ones."""
        rows = [
            (
                document.namespace,
                document.id,
                chunk.position,
                chunk.text,
                vector_literal(chunk.vector),
            )
            for chunk in chunks
        ]

        async def write() -> None:
            async with (
                self._pool.connection() as conn,
                conn.transaction(),
                conn.cursor() as cursor,
            ):
                await cursor.execute(
                    "DELETE FROM knowledge_documents WHERE namespace = %s AND id = %s",
                    (document.namespace, document.id),
                )
                await cursor.execute(
                    "INSERT INTO knowledge_documents (namespace, id, title, source, "
                    "content_hash, metadata) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        document.namespace,
                        document.id,
                        document.title,
                        document.source,
                        document.content_hash,
                        Jsonb(document.metadata),
                    ),
                )
                if rows:
                    await cursor.executemany(
                        "INSERT INTO knowledge_chunks "
                        "(namespace, document_id, position, text, embedding) "
                        "VALUES (%s, %s, %s, %s, %s::vector)",
                        rows,
                    )

        await self._once_more("write", write)

    async def delete(self, namespace: str, document_id: str) -> bool:
        """Delete a document and (by cascade) its chunks; False if there was none."""

        async def delete() -> bool:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "DELETE FROM knowledge_documents WHERE namespace = %s AND id = %s",
                    (namespace, document_id),
                )
                return cursor.rowcount > 0

        return await self._once_more("delete", delete)

    async def documents(self, namespace: str | None) -> list[DocumentInfo]:
        """The documents of a namespace (None: all), newest first, with chunk counts."""
        query = (
            "SELECT d.namespace, d.id, d.title, d.source, d.content_hash, d.metadata, "
            "d.updated_at, (SELECT count(*) FROM knowledge_chunks c "
            "WHERE c.namespace = d.namespace AND c.document_id = d.id) AS chunks "
            "FROM knowledge_documents d"
        )
        params: tuple[str, ...] = ()
        if namespace is not None:
            query += " WHERE d.namespace = %s"
            params = (namespace,)
        query += " ORDER BY d.updated_at DESC, d.id"

        async def read() -> list[dict[str, Any]]:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()

        return [
            DocumentInfo(
                namespace=row["namespace"],
                id=row["id"],
                title=row["title"],
                source=row["source"],
                content_hash=row["content_hash"],
                metadata=dict(row["metadata"]),
                updated_at=row["updated_at"],
                chunks=int(row["chunks"]),
            )
            for row in await self._once_more("list", read)
        ]

    async def counts(self) -> dict[str, int]:
        """Documents per namespace."""

        async def read() -> list[dict[str, Any]]:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT namespace, count(*) AS documents FROM knowledge_documents "
                    "GROUP BY namespace"
                )
                return await cursor.fetchall()

        return {
            str(row["namespace"]): int(row["documents"])
            for row in await self._once_more("count", read)
        }

    async def nearest(
        self, namespaces: Sequence[str], vector: Sequence[float], k: int
    ) -> list[Passage]:
        """The `k` chunks closest to `vector` (cosine) in those namespaces, best first."""
        literal = vector_literal(vector)

        async def read() -> list[dict[str, Any]]:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT c.text, c.namespace, d.id, d.title, d.source, "
                    "c.embedding <=> %(vector)s::vector AS distance "
                    "FROM knowledge_chunks c JOIN knowledge_documents d "
                    "ON d.namespace = c.namespace AND d.id = c.document_id "
                    "WHERE c.namespace = ANY(%(namespaces)s) "
                    "ORDER BY c.embedding <=> %(vector)s::vector LIMIT %(k)s",
                    {"vector": literal, "namespaces": list(dict.fromkeys(namespaces)), "k": k},
                )
                return await cursor.fetchall()

        return [
            Passage(
                text=row["text"],
                document_id=row["id"],
                title=row["title"],
                source=row["source"],
                score=1.0 - float(row["distance"]),
                namespace=row["namespace"],
            )
            for row in await self._once_more("search", read)
        ]


async def _create_extension(conn: psycopg.AsyncConnection[Any]) -> None:
    """`CREATE EXTENSION IF NOT EXISTS vector`, with a log line saying what to do if refused."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except _MISSING_EXTENSION:
        logger.error(
            "knowledge base: the PostgreSQL server has no pgvector extension; install it "
            "(e.g. the pgvector/pgvector:pg16 image, or the postgresql-16-pgvector package) "
            "or unset DATABASE_URL to use the embedded store"
        )
        raise
    except errors.InsufficientPrivilege:
        logger.error(
            "knowledge base: this database user may not create the pgvector extension; "
            "run `CREATE EXTENSION vector` once as a superuser or the database owner"
        )
        raise
