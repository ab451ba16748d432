"""The interface every vector store of the knowledge base implements, and its records.

A store keeps documents (id, title, source, metadata, content hash) and their chunks (text
and vector), each in a namespace (an API key id, or `shared`). It records which embedding
model and dimension its vectors come from: `open` with another model or dimension raises
`EmbeddingMismatchError` instead of mixing vectors that cannot be compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from nodes.tools.knowledge import Passage

__all__ = [
    "Chunk",
    "DocumentInfo",
    "EmbeddingMismatchError",
    "EmbeddingSpec",
    "EmbeddingsUnavailableError",
    "StoredDocument",
    "VectorStore",
]


@dataclass(frozen=True)
class EmbeddingSpec:
    """Which embedding the vectors of a store come from."""

    model: str
    """E.g. `offline-hash-v1`, or `<endpoint>:<model>` of a provider endpoint."""
    dimension: int


class EmbeddingMismatchError(ValueError):
    """The store's vectors come from another embedding model or dimension than configured."""

    def __init__(self, stored: EmbeddingSpec, configured: EmbeddingSpec, where: str) -> None:
        super().__init__(
            f"The knowledge base in {where} holds vectors of {stored.model!r} "
            f"({stored.dimension} dimensions), but KNOWLEDGE_EMBEDDINGS is now "
            f"{configured.model!r} ({configured.dimension} dimensions). Vectors of two models "
            "cannot be compared: set KNOWLEDGE_EMBEDDINGS back, or delete the documents "
            "(DELETE /admin/knowledge/{id}, or the store) and ingest them again."
        )
        self.stored = stored
        self.configured = configured


class EmbeddingsUnavailableError(RuntimeError):
    """The embedding endpoint cannot be reached, or refused a request (after its retries)."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(message)
        self.model = model
        """The `<endpoint>:<model>` that failed."""


@dataclass(frozen=True)
class StoredDocument:
    """A document as the store keeps it (its text lives in its chunks)."""

    namespace: str
    id: str
    title: str
    source: str | None
    content_hash: str
    """SHA-256 of the document's text (and title): an unchanged document is not re-embedded."""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """One piece of a document's text and its vector."""

    position: int
    text: str
    vector: Sequence[float]


@dataclass(frozen=True)
class DocumentInfo:
    """A document in a listing (`GET /admin/knowledge`)."""

    namespace: str
    id: str
    title: str
    source: str | None
    content_hash: str
    chunks: int
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


class VectorStore(Protocol):
    """A store of documents and chunk vectors (sqlite-vec or pgvector).

    Store errors surface as the driver's own (`sqlite3.Error`, `psycopg.Error`); the service
    turns them into `KnowledgeUnavailableError` for the tool and 503s for the admin routes.
    """

    where: str
    """Where the store is, for messages (a file path, or "PostgreSQL")."""

    async def open(self, spec: EmbeddingSpec) -> None:
        """Create the tables and index if missing, and record or check the embedding spec.

        Raises:
            EmbeddingMismatchError: The store already holds vectors of another spec.
        """
        ...

    async def close(self) -> None:
        """Release what `open` acquired (not a pool it was given)."""
        ...

    async def content_hash(self, namespace: str, document_id: str) -> str | None:
        """The stored document's content hash, or None if there is no such document."""
        ...

    async def replace(self, document: StoredDocument, chunks: Sequence[Chunk]) -> None:
        """Store the document and its chunks in one transaction, replacing any earlier ones."""
        ...

    async def delete(self, namespace: str, document_id: str) -> bool:
        """Delete a document and its chunks; False if there was none."""
        ...

    async def documents(self, namespace: str | None) -> list[DocumentInfo]:
        """The documents of a namespace (None: of all), newest first, with chunk counts."""
        ...

    async def counts(self) -> dict[str, int]:
        """How many documents each namespace holds (namespaces without any left out)."""
        ...

    async def nearest(
        self, namespaces: Sequence[str], vector: Sequence[float], k: int
    ) -> list[Passage]:
        """The `k` chunks closest to `vector` (cosine) in those namespaces, best first."""
        ...
