"""Opening the knowledge base in the app's lifespan (and in `make ingest`).

The store follows the checkpointer: pgvector in PostgreSQL on the saver's pool when
DATABASE_URL is set, else sqlite-vec in the KNOWLEDGE_PATH file. A store that cannot be
opened (no pgvector extension, another embedding than the one recorded) is logged with what
to do, and the service runs without a knowledge base: `knowledge_search` then says it is
not available, and `/admin/knowledge` answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from server.knowledge.embeddings import embeddings_for
from server.knowledge.pg_store import PostgresVectorStore
from server.knowledge.service import STORE_ERRORS, Knowledge
from server.knowledge.sqlite_store import SqliteVectorStore
from server.knowledge.store import (
    EmbeddingMismatchError,
    EmbeddingsUnavailableError,
    VectorStore,
)
from server.settings import Settings
from server.stores.checkpointer import connection_pool

__all__ = ["open_knowledge"]

logger = logging.getLogger(__name__)


def _store(settings: Settings, saver: BaseCheckpointSaver[Any] | None) -> VectorStore:
    pool = connection_pool(saver) if saver is not None else None
    if pool is not None:
        return PostgresVectorStore(pool)
    return SqliteVectorStore(settings.knowledge_path)


@asynccontextmanager
async def open_knowledge(
    settings: Settings, saver: BaseCheckpointSaver[Any] | None
) -> AsyncIterator[Knowledge | None]:
    """The knowledge base, opened (None: disabled, or it could not be opened: logged)."""
    if not settings.knowledge_enabled:
        yield None
        return
    store = _store(settings, saver)
    try:
        embeddings, spec = await embeddings_for(settings)
    except EmbeddingsUnavailableError as error:
        logger.error("the knowledge base is not available: %s", error)
        yield None
        return
    knowledge = Knowledge(
        store,
        embeddings,
        spec,
        chunk_size=settings.knowledge_chunk_size,
        chunk_overlap=settings.knowledge_chunk_overlap,
        batch=settings.knowledge_embed_batch,
    )
    try:
        await knowledge.open()
    except (EmbeddingMismatchError, *STORE_ERRORS) as error:
        logger.error("the knowledge base is not available: %s", error)
        await knowledge.close()
        yield None
        return
    try:
        yield knowledge
    finally:
        await knowledge.close()
