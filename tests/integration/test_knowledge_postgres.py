"""The knowledge base on PostgreSQL with pgvector, on the checkpointer's pool.

A real pgvector-enabled PostgreSQL 16 (`pgvector_cluster`: pgserver's bundled binaries, a
database per test), opened the way the service opens it (`open_checkpointer` then
`open_knowledge`): a three-document Markdown corpus written here finds each document's
passage first; re-ingesting is idempotent; documents are kept per namespace; the vectors have
an HNSW cosine index; another embedding is refused; a restart of the server does not fail
the calls after it. On a PostgreSQL without pgvector (the machine's own, `postgres_cluster`),
or as a user who may not create the extension, the knowledge base is off with a logged reason
and the service still starts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import psycopg
import pytest
from psycopg import sql

from nodes.tools.knowledge import SHARED_NAMESPACE
from server.knowledge.embeddings import OfflineEmbeddings, offline_spec
from server.knowledge.opening import open_knowledge
from server.knowledge.pg_store import PostgresVectorStore
from server.knowledge.service import Document, Knowledge
from server.knowledge.store import EmbeddingMismatchError
from server.settings import Settings
from server.stores.checkpointer import connection_pool, open_checkpointer
from tests.conftest import SettingsFactory
from tests.fakes.postgres_cluster import PostgresCluster
from tests.fakes.server_thread import ServedApp

pytestmark = pytest.mark.postgres

Serve = Callable[[Settings], ServedApp]

CORPUS = {
    "ops/deploys.md": (
        "# Deploying the billing service\n\n"
        "## Rolling out\n\n"
        "Deploys of the billing service go through the canary ring first: tag the release, "
        "run `make rollout RING=canary`, and watch the error budget for thirty minutes before "
        "promoting it to every region.\n\n"
        "## Rolling back\n\nA failed canary is rolled back with `make rollback`.\n"
    ),
    "garden/tomatoes.md": (
        "# Growing tomatoes\n\n"
        "Tomato seedlings are planted out after the last frost, sixty centimetres apart, and "
        "watered at the roots every morning; pinch out the side shoots weekly.\n"
    ),
    "travel/visas.md": (
        "# Travel visas\n\n"
        "Business travellers apply for a visa through the travel desk at least six weeks "
        "before departure; passports must be valid for six months after the return date.\n"
    ),
}
QUESTIONS = {
    "ops/deploys.md": "how do I deploy the billing service to the canary ring",
    "garden/tomatoes.md": "when are tomato seedlings planted out",
    "travel/visas.md": "how early must business travellers apply for a visa",
}
KEY_A, KEY_B = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


def documents() -> list[Document]:
    return [
        Document(id=path, text=text, title=text.splitlines()[0][2:], source=path)
        for path, text in CORPUS.items()
    ]


@pytest.fixture
def settings(make_settings: SettingsFactory, pgvector_url: str) -> Settings:
    # 200-character chunks: the deploy runbook becomes several passages.
    return make_settings(database_url=pgvector_url, knowledge_chunk_size=200)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Knowledge]:
    """The knowledge base as the lifespan opens it: on the checkpointer's pool."""
    async with (
        open_checkpointer(settings) as saver,
        open_knowledge(settings, saver) as knowledge,
    ):
        assert knowledge is not None
        assert isinstance(knowledge.store, PostgresVectorStore)
        yield knowledge


def scalar(url: str, query: str, *params: object) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


async def test_each_question_finds_its_document_first(settings: Settings) -> None:
    async with opened(settings) as knowledge:
        outcomes = await knowledge.ingest(documents())
        assert [o.status for o in outcomes] == ["added"] * 3
        assert outcomes[0].chunks > 1  # the runbook is longer than one 200-character chunk
        for path, question in QUESTIONS.items():
            passages = await knowledge.search([SHARED_NAMESPACE], question, 3)
            assert passages[0].document_id == path, (question, passages)
            assert passages[0].source == path
            assert passages[0].title == CORPUS[path].splitlines()[0][2:]
            assert passages[0].namespace == SHARED_NAMESPACE
            assert 0.0 < passages[0].score <= 1.0
            assert passages[0].score > passages[-1].score
        best = await knowledge.search([SHARED_NAMESPACE], QUESTIONS["ops/deploys.md"], 1)
        assert len(best) == 1
        assert "make rollout RING=canary" in best[0].text  # rolling out, not rolling back
        assert knowledge.describe()["store"] == "PostgreSQL"


async def test_the_score_is_one_minus_the_cosine_distance(settings: Settings) -> None:
    async with opened(settings) as knowledge:
        await knowledge.ingest(documents()[1:2])
        text = CORPUS["garden/tomatoes.md"]
        (passage,) = await knowledge.search([SHARED_NAMESPACE], text, 1)
        # The same text embeds to the same vector: cosine distance 0 (float32 storage).
        assert passage.score == pytest.approx(1.0, abs=1e-5)


async def test_the_vectors_have_an_hnsw_cosine_index(settings: Settings) -> None:
    async with opened(settings):
        pass
    url = settings.database_url
    assert url is not None
    indexdef = scalar(
        url.get_secret_value(),
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'knowledge_chunks' "
        "AND indexdef ILIKE '%%USING hnsw%%'",
    )
    assert "vector_cosine_ops" in str(indexdef)
    column = scalar(
        url.get_secret_value(),
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'knowledge_chunks'::regclass AND attname = 'embedding'",
    )
    assert column == f"vector({offline_spec().dimension})"
    model = scalar(url.get_secret_value(), "SELECT value FROM knowledge_meta WHERE key = 'model'")
    assert model == offline_spec().model


async def test_reingesting_skips_unchanged_documents_and_replaces_changed_ones(
    settings: Settings,
) -> None:
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()
    chunks_of = "SELECT count(*) FROM knowledge_chunks WHERE document_id = %s"
    async with opened(settings) as knowledge:
        await knowledge.ingest(documents())
        before = {d.id: d.chunks for d in await knowledge.documents()}
        total = scalar(url, "SELECT count(*) FROM knowledge_chunks")
        assert total == sum(before.values())

        again = await knowledge.ingest(documents())
        assert [o.status for o in again] == ["unchanged"] * 3
        assert {d.id: d.chunks for d in await knowledge.documents()} == before
        assert scalar(url, "SELECT count(*) FROM knowledge_chunks") == total  # no duplicates

        changed = Document(
            id="garden/tomatoes.md",
            title="Growing tomatoes",
            text="# Growing tomatoes\n\nThe tomato bed was turned into a strawberry patch.",
            source="garden/tomatoes.md",
        )
        (outcome,) = await knowledge.ingest([changed])
        assert outcome.status == "replaced"
        assert scalar(url, chunks_of, "garden/tomatoes.md") == outcome.chunks
        old = "SELECT count(*) FROM knowledge_chunks WHERE text LIKE %s"
        assert scalar(url, old, "%seedlings%") == 0  # no chunk of the old text is left
        passages = await knowledge.search([SHARED_NAMESPACE], "tomato seedlings frost", 10)
        tomatoes = [p for p in passages if p.document_id == "garden/tomatoes.md"]
        assert tomatoes
        assert all("strawberry" in p.text for p in tomatoes)

        listed = await knowledge.documents()
        assert listed[0].id == "garden/tomatoes.md"  # newest first
        assert listed[0].chunks == outcome.chunks
        assert listed[0].updated_at.tzinfo is not None

        assert await knowledge.delete("garden/tomatoes.md") is True
        assert await knowledge.delete("garden/tomatoes.md") is False
        assert {d.id for d in await knowledge.documents()} == {
            "ops/deploys.md",
            "travel/visas.md",
        }
        assert await knowledge.store.counts() == {SHARED_NAMESPACE: 2}
    assert scalar(url, chunks_of, "garden/tomatoes.md") == 0  # the chunks went with it


async def test_namespaces_keep_each_keys_documents_apart(settings: Settings) -> None:
    async with opened(settings) as knowledge:
        await knowledge.ingest(documents()[:1], namespace=KEY_A)
        await knowledge.ingest(documents()[1:2], namespace=SHARED_NAMESPACE)
        question = QUESTIONS["ops/deploys.md"]

        mine = await knowledge.search([KEY_A, SHARED_NAMESPACE], question, 5)
        assert mine[0].document_id == "ops/deploys.md"
        assert mine[0].namespace == KEY_A
        theirs = await knowledge.search([KEY_B, SHARED_NAMESPACE], question, 5)
        assert {p.document_id for p in theirs} == {"garden/tomatoes.md"}
        shared = QUESTIONS["garden/tomatoes.md"]
        for key in (KEY_A, KEY_B):
            found = await knowledge.search([key, SHARED_NAMESPACE], shared, 5)
            assert found[0].document_id == "garden/tomatoes.md"

        assert [d.id for d in await knowledge.documents(KEY_A)] == ["ops/deploys.md"]
        assert await knowledge.documents(KEY_B) == []
        assert len(await knowledge.documents()) == 2
        assert await knowledge.store.counts() == {KEY_A: 1, SHARED_NAMESPACE: 1}
        assert knowledge.has_documents([KEY_A])
        assert not knowledge.has_documents([KEY_B])
        # The same id in another namespace is another document.
        (outcome,) = await knowledge.ingest(documents()[:1], namespace=KEY_B)
        assert outcome.status == "added"
        assert await knowledge.delete("ops/deploys.md", namespace=KEY_A) is True
        assert [d.id for d in await knowledge.documents(KEY_B)] == ["ops/deploys.md"]


async def test_a_store_of_another_embedding_is_refused_with_both_named(
    settings: Settings,
) -> None:
    async with opened(settings) as knowledge:
        await knowledge.ingest(documents()[:1])
    async with open_checkpointer(settings) as saver:
        pool = connection_pool(saver)
        assert pool is not None
        spec = offline_spec(256)
        other = Knowledge(PostgresVectorStore(pool), OfflineEmbeddings(256), spec)
        with pytest.raises(EmbeddingMismatchError) as raised:
            await other.open()
        await other.close()
    message = str(raised.value)
    assert "512 dimensions" in message
    assert "256 dimensions" in message
    assert "PostgreSQL" in message
    async with opened(settings) as knowledge:  # the recorded spec still opens, data intact
        assert [d.id for d in await knowledge.documents()] == ["ops/deploys.md"]


async def test_a_restart_of_postgresql_does_not_fail_the_next_calls(
    settings: Settings, pgvector_cluster: PostgresCluster
) -> None:
    async with opened(settings) as knowledge:
        await knowledge.ingest(documents())
        pgvector_cluster.restart()  # every pooled connection is now dead
        passages = await knowledge.search([SHARED_NAMESPACE], QUESTIONS["travel/visas.md"], 1)
        assert passages[0].document_id == "travel/visas.md"
        pgvector_cluster.restart()
        assert await knowledge.delete("travel/visas.md") is True
        pgvector_cluster.restart()
        assert len(await knowledge.documents()) == 2


# --- without pgvector -----------------------------------------------------------------------


async def test_without_pgvector_the_knowledge_base_is_off_and_says_why(
    make_settings: SettingsFactory,
    postgres_cluster: PostgresCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    available = scalar(
        postgres_cluster.url, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
    )
    if available:
        pytest.skip("this machine's PostgreSQL has pgvector: no server without it to test")
    settings = make_settings(database_url=postgres_cluster.url)
    caplog.set_level(logging.ERROR, logger="server.knowledge")
    async with open_checkpointer(settings) as saver, open_knowledge(settings, saver) as knowledge:
        assert knowledge is None
        assert connection_pool(saver) is not None  # the checkpointer works on
    messages = [r.getMessage() for r in caplog.records]
    assert any("no pgvector extension" in m and "install it" in m for m in messages), messages
    assert any(m.startswith("the knowledge base is not available") for m in messages), messages


def test_without_pgvector_the_service_starts_degraded(
    make_settings: SettingsFactory, postgres_cluster: PostgresCluster, serve: Serve
) -> None:
    app = serve(make_settings(database_url=postgres_cluster.url))
    response = httpx.get(f"{app.url}/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["checkpointer"]["ok"] is True
    assert body["checks"]["knowledge"] == {"ok": False, "enabled": True}
    assert "knowledge-unavailable" in body["degraded"]


async def test_a_user_who_may_not_create_the_extension_is_told_so(
    make_settings: SettingsFactory,
    pgvector_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pgvector_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        # It may create tables (the checkpoints), not extensions (no CREATE on the database).
        admin.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    url = pgvector_url.replace("postgres@", f"{role}@", 1)
    settings = make_settings(database_url=url)
    caplog.set_level(logging.ERROR, logger="server.knowledge")
    try:
        async with (
            open_checkpointer(settings) as saver,
            open_knowledge(settings, saver) as knowledge,
        ):
            assert knowledge is None
    finally:
        with psycopg.connect(pgvector_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    messages = [r.getMessage() for r in caplog.records]
    assert any("may not create the pgvector extension" in m for m in messages), messages
