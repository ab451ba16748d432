"""Semantic search of the memory store on PostgreSQL with pgvector, with the knowledge base's
embedding: through the SDK on the served app, and the store's fallbacks when it cannot be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore
from langgraph_sdk import get_client

from server.knowledge.embeddings import OFFLINE_DIMENSION, OfflineEmbeddings
from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from server.stores.memory_store import MemoryIndex, open_memory_store
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp

pytestmark = pytest.mark.postgres

Serve = Callable[[Settings], ServedApp]

NOTES = {
    "pets": "The cat sleeps on the warm windowsill every afternoon.",
    "db": "Restart PostgreSQL with pg_ctl restart after changing postgresql.conf.",
    "food": "Grandmother's lasagne recipe needs fresh basil and ricotta.",
}


async def test_a_query_finds_the_closest_items_first(
    serve: Serve, make_settings: SettingsFactory, pgvector_url: str
) -> None:
    settings = make_settings(agent_models={"offline": ["offline"]}, database_url=pgvector_url)
    served = serve(settings)
    async with get_client(url=served.url) as client:
        for key, text in NOTES.items():
            await client.store.put_item(["notes"], key, {"text": text})
        found = (await client.store.search_items(["notes"], query="how to restart postgres"))[
            "items"
        ]
        cooking = (await client.store.search_items(["notes"], query="lasagne recipe", limit=1))[
            "items"
        ]
    assert found[0]["key"] == "db"
    scores = [item["score"] for item in found]
    numbers = [score for score in scores if isinstance(score, float)]
    assert numbers == scores  # every item scored
    assert numbers == sorted(numbers, reverse=True)
    assert [item["key"] for item in cooking] == ["food"]


class OtherEmbeddings(Embeddings):
    """An embedding of another dimension than the store's vectors."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0, 0.0]


async def _put_and_search(store: BaseStore) -> list[str]:
    await store.aput(("notes",), "db", {"text": NOTES["db"]})
    return [item.key for item in await store.asearch(("notes",), query="restart postgres")]


async def test_another_dimension_or_no_pgvector_leaves_the_store_without_semantic_search(
    make_settings: SettingsFactory,
    pgvector_url: str,
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    indexed = MemoryIndex(OfflineEmbeddings(), OFFLINE_DIMENSION)
    settings = make_settings(database_url=pgvector_url)
    async with (
        open_checkpointer(settings) as saver,
        open_memory_store(settings, saver, indexed) as store,
    ):
        assert await _put_and_search(store) == ["db"]
        assert store.index_config is not None  # type: ignore[attr-defined]
    caplog.set_level(logging.ERROR, "server.stores.memory_store")
    async with (
        open_checkpointer(settings) as saver,
        open_memory_store(settings, saver, MemoryIndex(OtherEmbeddings(), 3)) as store,
    ):
        assert store.index_config is None  # type: ignore[attr-defined]
        assert await _put_and_search(store) == ["db"]
    assert "its vectors have 512 dimensions, the configured embedding 3" in caplog.text

    plain = make_settings(database_url=postgres_url)  # the shared server: no pgvector
    async with open_checkpointer(plain) as saver, open_memory_store(plain, saver, indexed) as store:
        assert store.index_config is None  # type: ignore[attr-defined]
        assert await _put_and_search(store) == ["db"]
    assert "semantic search is off" in caplog.text
