"""`Knowledge`: the knowledge base the tool, the admin routes and `make ingest` use.

It splits a document's text into chunks (LangChain's recursive character splitter), embeds
them in batches, and stores them with the document (`VectorStore.replace`, one transaction),
unless the document's content hash is the stored one: re-ingesting an unchanged document
costs one lookup and no embedding call. A search embeds the query and asks the store for the
nearest chunks in the caller's namespaces.

`has_documents` answers the router from memory (no I/O per turn): the count is read at start,
kept current by this replica's own writes, and read again in the background at most every
`_RECOUNT_SECONDS`, so documents another replica (or `make ingest`) added are offered soon.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from nodes.tools.knowledge import (
    SHARED_NAMESPACE,
    KnowledgeUnavailableError,
    Passage,
)
from server.knowledge.store import (
    Chunk,
    DocumentInfo,
    EmbeddingSpec,
    EmbeddingsUnavailableError,
    StoredDocument,
    VectorStore,
)

__all__ = [
    "STORE_ERRORS",
    "Document",
    "IngestOutcome",
    "Knowledge",
    "content_hash",
]

logger = logging.getLogger(__name__)

STORE_ERRORS: Final = (sqlite3.Error, psycopg.Error, OSError)
"""What a store raises when it cannot be read or written (sqlean raises sqlite3's types)."""
_RECOUNT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class Document:
    """A document to ingest."""

    id: str
    text: str
    title: str = ""
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestOutcome:
    """What ingesting one document did."""

    id: str
    status: str
    """`added`, `replaced` or `unchanged`."""
    chunks: int


def content_hash(document: Document) -> str:
    """SHA-256 over what the chunks are made of (title and text), hex."""
    digest = hashlib.sha256()
    digest.update(document.title.encode())
    digest.update(b"\0")
    digest.update(document.text.encode())
    return digest.hexdigest()


class Knowledge:
    """The knowledge base over one store and one embedding (implements `KnowledgeBase`)."""

    def __init__(
        self,
        store: VectorStore,
        embeddings: Embeddings,
        spec: EmbeddingSpec,
        *,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        batch: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.spec = spec
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 2)
        )
        self._batch = batch
        self._short = chunk_size // 4
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._counted_at = float("-inf")
        self._recount: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the store (tables, index, embedding spec check) and count its documents.

        Raises:
            EmbeddingMismatchError: The store holds vectors of another embedding.
        """
        await self.store.open(self.spec)
        await self._count_now()

    async def close(self) -> None:
        """Close the store, after a background recount if one runs."""
        if self._recount is not None and not self._recount.done():
            self._recount.cancel()
        await self.store.close()
        close = getattr(self.embeddings, "aclose", None)  # a provider's HTTP clients
        if close is not None:
            await close()

    def describe(self) -> dict[str, Any]:
        """What `/ready` shows: the store, the embedding, the documents at the last count."""
        return {
            "store": self.store.where,
            "embedding": self.spec.model,
            "dimension": self.spec.dimension,
            "documents": sum(self._counts.values()),
        }

    # --- the tool's side ------------------------------------------------------------------

    async def search(self, namespaces: Sequence[str], query: str, k: int) -> list[Passage]:
        """The `k` passages closest to the query in those namespaces, best first.

        Raises:
            KnowledgeUnavailableError: The embedding or the store failed.
        """
        if not self.has_documents(namespaces):
            return []
        try:
            vector = await self.embeddings.aembed_query(query)
        except EmbeddingsUnavailableError as error:
            logger.warning("knowledge search: the embedding failed: %s", error)
            raise KnowledgeUnavailableError(
                f"the knowledge base cannot embed the query now ({error.model} failed)"
            ) from error
        try:
            return await self.store.nearest(namespaces, vector, k)
        except STORE_ERRORS as error:
            logger.warning("knowledge search failed: %s: %s", type(error).__name__, error)
            raise KnowledgeUnavailableError(
                f"the knowledge base cannot be searched now ({type(error).__name__})"
            ) from error

    def has_documents(self, namespaces: Sequence[str]) -> bool:
        """Whether those namespaces held documents at the last count (no I/O)."""
        self._maybe_recount()
        return any(self._counts.get(namespace, 0) > 0 for namespace in namespaces)

    # --- the operators' side --------------------------------------------------------------

    async def ingest(
        self, documents: Iterable[Document], *, namespace: str = SHARED_NAMESPACE
    ) -> list[IngestOutcome]:
        """Add or replace documents; an unchanged one (same content hash) is skipped.

        Raises:
            psycopg.Error | sqlite3.Error: The store failed (what was ingested before stays).
        """
        return [await self.ingest_one(document, namespace=namespace) for document in documents]

    async def ingest_one(
        self, document: Document, *, namespace: str = SHARED_NAMESPACE
    ) -> IngestOutcome:
        """Add or replace one document (see `ingest`)."""
        digest = content_hash(document)
        stored = await self.store.content_hash(namespace, document.id)
        if stored == digest:
            return IngestOutcome(document.id, "unchanged", 0)
        texts = self.split(document)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            vectors += await self.embeddings.aembed_documents(texts[start : start + self._batch])
        chunks = [
            Chunk(position, text, vector)
            for position, (text, vector) in enumerate(zip(texts, vectors, strict=True))
        ]
        await self.store.replace(
            StoredDocument(
                namespace=namespace,
                id=document.id,
                title=document.title or document.id,
                source=document.source,
                content_hash=digest,
                metadata=dict(document.metadata),
            ),
            chunks,
        )
        if stored is None:
            self._counts[namespace] = self._counts.get(namespace, 0) + 1
        return IngestOutcome(document.id, "added" if stored is None else "replaced", len(chunks))

    def split(self, document: Document) -> list[str]:
        """The chunks of a document's text (the text itself if the splitter gave none).

        A piece much shorter than a chunk (a heading the splitter cut from its section) is
        joined to the piece after it: alone it would match a question by its words and
        answer it with nothing.
        """
        pieces = [piece for piece in self._splitter.split_text(document.text) if piece.strip()]
        chunks: list[str] = []
        carried = ""
        for piece in pieces:
            text = f"{carried}\n\n{piece}" if carried else piece
            if len(text) < self._short:
                carried = text
                continue
            chunks.append(text)
            carried = ""
        if carried:
            if chunks:
                chunks[-1] = f"{chunks[-1]}\n\n{carried}"
            else:
                chunks.append(carried)
        return chunks or [document.text.strip() or document.title]

    async def delete(self, document_id: str, *, namespace: str = SHARED_NAMESPACE) -> bool:
        """Delete a document and its chunks; False if there was none."""
        deleted = await self.store.delete(namespace, document_id)
        if deleted:
            self._counts[namespace] = max(0, self._counts.get(namespace, 0) - 1)
        return deleted

    async def documents(self, namespace: str | None = None) -> list[DocumentInfo]:
        """The documents of a namespace (None: of all), newest first."""
        return await self.store.documents(namespace)

    # --- counting -------------------------------------------------------------------------

    async def _count_now(self) -> None:
        self._counts = await self.store.counts()
        self._counted_at = self._clock()

    def _maybe_recount(self) -> None:
        if self._clock() - self._counted_at < _RECOUNT_SECONDS:
            return
        if self._recount is not None and not self._recount.done():
            return
        self._counted_at = self._clock()  # one recount per period, even if this one fails
        self._recount = asyncio.get_running_loop().create_task(
            self._recount_quietly(), name="knowledge-recount"
        )

    async def _recount_quietly(self) -> None:
        try:
            await self._count_now()
        except STORE_ERRORS as error:
            logger.warning("knowledge recount failed: %s: %s", type(error).__name__, error)
