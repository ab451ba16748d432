"""The knowledge base on the embedded store (sqlite-vec) with the offline embedding.

A three-document Markdown corpus written here, on three distinct topics: a question about
each finds that document's passage first; re-ingesting is idempotent; documents are kept
per key namespace; a store of another embedding is refused; and a whole `/v1` turn on the
offline model searches the knowledge base and names the source.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import SecretStr

from nodes.tools.knowledge import SHARED_NAMESPACE
from server.auth import digest
from server.knowledge.embeddings import OfflineEmbeddings, offline_spec
from server.knowledge.service import Document, Knowledge
from server.knowledge.sqlite_store import SqliteVectorStore
from server.knowledge.store import EmbeddingMismatchError
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp

Serve = Callable[[Settings], ServedApp]

CORPUS = {
    "runbooks/database.md": (
        "# Database runbook\n\n"
        "## Restarting PostgreSQL\n\n"
        "To restart the PostgreSQL cluster, drain the replicas first, then run "
        "`pg_ctlcluster 16 main restart` on the primary. Replication lag must be below one "
        "second before traffic returns.\n\n"
        "## Backups\n\nNightly base backups go to the object store; WAL is archived hourly.\n"
    ),
    "hr/vacation.md": (
        "# Vacation policy\n\n"
        "Every employee has 25 vacation days a year. Request leave in the HR portal two weeks "
        "ahead; unused days carry over until the end of March.\n"
    ),
    "office/coffee.md": (
        "# Coffee machine\n\n"
        "The espresso machine on the third floor is descaled every Friday with citric acid. "
        "Empty the grounds drawer when the red light blinks.\n"
    ),
}
QUESTIONS = {
    "runbooks/database.md": "how do I restart the PostgreSQL cluster",
    "hr/vacation.md": "how many vacation days do employees get",
    "office/coffee.md": "when is the espresso machine descaled",
}


def documents() -> list[Document]:
    return [
        Document(id=path, text=text, title=text.splitlines()[0][2:], source=path)
        for path, text in CORPUS.items()
    ]


def knowledge_at(path: Path, dimension: int | None = None) -> Knowledge:
    spec = offline_spec() if dimension is None else offline_spec(dimension)
    return Knowledge(
        SqliteVectorStore(path), OfflineEmbeddings(spec.dimension), spec, chunk_size=200
    )


def ingest(path: Path, docs: list[Document], namespace: str = SHARED_NAMESPACE) -> list[str]:
    async def run() -> list[str]:
        knowledge = knowledge_at(path)
        await knowledge.open()
        try:
            outcomes = await knowledge.ingest(docs, namespace=namespace)
        finally:
            await knowledge.close()
        return [outcome.status for outcome in outcomes]

    return asyncio.run(run())


async def test_each_question_finds_its_document_first(tmp_path: Path) -> None:
    knowledge = knowledge_at(tmp_path / "k.sqlite")
    await knowledge.open()
    try:
        outcomes = await knowledge.ingest(documents())
        assert [o.status for o in outcomes] == ["added"] * 3
        assert all(o.chunks >= 1 for o in outcomes)
        assert outcomes[0].chunks > 1  # the runbook is longer than one 200-character chunk
        for path, question in QUESTIONS.items():
            passages = await knowledge.search([SHARED_NAMESPACE], question, 3)
            assert passages[0].document_id == path, (question, passages)
            assert passages[0].source == path
            assert passages[0].score > passages[-1].score
        best = (await knowledge.search([SHARED_NAMESPACE], QUESTIONS["runbooks/database.md"], 1))[0]
        assert "pg_ctlcluster" in best.text  # the passage about restarting, not about backups
    finally:
        await knowledge.close()


async def test_reingesting_skips_unchanged_documents_and_replaces_changed_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "k.sqlite"
    knowledge = knowledge_at(path)
    await knowledge.open()
    try:
        await knowledge.ingest(documents())
        before = {d.id: d.chunks for d in await knowledge.documents()}

        again = await knowledge.ingest(documents())
        assert [o.status for o in again] == ["unchanged"] * 3
        assert {d.id: d.chunks for d in await knowledge.documents()} == before

        changed = Document(
            id="office/coffee.md",
            title="Coffee machine",
            text="# Coffee machine\n\nThe machine was replaced by a tea kettle in the lobby.",
            source="office/coffee.md",
        )
        (outcome,) = await knowledge.ingest([changed])
        assert outcome.status == "replaced"
        passages = await knowledge.search([SHARED_NAMESPACE], "espresso descaled citric", 10)
        coffee = [p for p in passages if p.document_id == "office/coffee.md"]
        assert coffee
        assert all("kettle" in p.text for p in coffee)  # no chunk of the old text is left

        assert await knowledge.delete("office/coffee.md") is True
        assert await knowledge.delete("office/coffee.md") is False
        assert {d.id for d in await knowledge.documents()} == {
            "hr/vacation.md",
            "runbooks/database.md",
        }
    finally:
        await knowledge.close()
    with sqlite3.connect(path) as conn:  # the chunks went with their documents
        (chunks,) = conn.execute(
            "SELECT count(*) FROM knowledge_chunks WHERE document_id = 'office/coffee.md'"
        ).fetchone()
    assert chunks == 0


async def test_namespaces_keep_each_keys_documents_apart(tmp_path: Path) -> None:
    knowledge = knowledge_at(tmp_path / "k.sqlite")
    await knowledge.open()
    try:
        await knowledge.ingest(documents()[:1], namespace="aaaaaaaaaaaaaaaa")
        await knowledge.ingest(documents()[1:2], namespace=SHARED_NAMESPACE)
        question = QUESTIONS["runbooks/database.md"]
        mine = await knowledge.search(["aaaaaaaaaaaaaaaa", SHARED_NAMESPACE], question, 5)
        assert mine[0].document_id == "runbooks/database.md"
        theirs = await knowledge.search(["bbbbbbbbbbbbbbbb", SHARED_NAMESPACE], question, 5)
        assert {p.document_id for p in theirs} == {"hr/vacation.md"}
        assert knowledge.has_documents(["aaaaaaaaaaaaaaaa"])
        assert not knowledge.has_documents(["bbbbbbbbbbbbbbbb"])
    finally:
        await knowledge.close()


async def test_a_store_of_another_embedding_is_refused_with_both_named(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    first = knowledge_at(path)
    await first.open()
    await first.ingest(documents()[:1])
    await first.close()

    other = knowledge_at(path, dimension=256)
    with pytest.raises(EmbeddingMismatchError) as raised:
        await other.open()
    message = str(raised.value)
    assert "512 dimensions" in message
    assert "256 dimensions" in message
    assert str(path) in message
    await other.close()


# --- through the service ------------------------------------------------------------------

KEY_A, KEY_B = "sk-reader-a", "sk-reader-b"


def ask(app: ServedApp, text: str, key: str = "unused") -> str:
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0)
    completion = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content or ""


def test_a_v1_turn_answers_from_the_documents_and_names_the_source(
    make_settings: SettingsFactory, serve: Serve, tmp_path: Path
) -> None:
    settings = make_settings()
    assert ingest(settings.knowledge_path, documents()) == ["added"] * 3
    app = serve(settings)

    answer = ask(app, "What do the docs say about restarting the PostgreSQL cluster?")
    assert answer.startswith('According to "Database runbook" (runbooks/database.md)')
    assert "pg_ctlcluster 16 main restart" in answer

    answer = ask(app, "search the knowledge base for vacation days")
    assert answer.startswith('According to "Vacation policy" (hr/vacation.md)')
    assert "25 vacation days" in answer


def test_without_documents_the_tool_is_not_offered(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    answer = ask(app, "search the knowledge base for vacation days")
    assert "According to" not in answer
    assert "knowledge base is empty" not in answer  # the tool was not even called


def test_a_keys_documents_answer_that_key_only(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings(api_keys=[SecretStr(KEY_A), SecretStr(KEY_B)])
    ingest(settings.knowledge_path, documents()[:1], namespace=digest(KEY_A)[:16])
    app = serve(settings)

    question = "what do the docs say about restarting PostgreSQL"
    assert ask(app, question, KEY_A).startswith('According to "Database runbook"')
    assert "According to" not in ask(app, question, KEY_B)


def ask_cached(app: ServedApp, text: str, key: str) -> tuple[str, str]:
    """The answer to a cacheable (temperature 0, stateless) question, and its `X-Cache`."""
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="offline", messages=[{"role": "user", "content": text}], temperature=0
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-cache"]


def test_a_shared_cache_never_gives_one_keys_documents_to_another(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    key_c = "sk-reader-c"
    settings = make_settings(
        api_keys=[SecretStr(KEY_A), SecretStr(KEY_B), SecretStr(key_c)],
        cache_shared_across_keys=True,
    )
    ingest(settings.knowledge_path, documents()[:1], namespace=digest(KEY_A)[:16])
    ingest(settings.knowledge_path, documents()[1:2], namespace=SHARED_NAMESPACE)
    app = serve(settings)

    private = "what do the docs say about restarting PostgreSQL"
    answer, cache = ask_cached(app, private, KEY_A)
    assert (answer.startswith('According to "Database runbook"'), cache) == (True, "miss")
    answer, cache = ask_cached(app, private, KEY_B)
    assert "pg_ctlcluster" not in answer  # built from B's own (shared) view, not A's answer
    assert cache == "miss"
    answer, cache = ask_cached(app, private, KEY_A)
    assert (answer.startswith('According to "Database runbook"'), cache) == (True, "hit")

    # An answer from the shared documents is still shared, between keys without documents.
    common = "search the knowledge base for vacation days"
    answer, cache = ask_cached(app, common, KEY_B)
    assert (answer.startswith('According to "Vacation policy"'), cache) == (True, "miss")
    assert ask_cached(app, common, key_c) == (answer, "hit")
    # A key with documents of its own reads its own entries only: they could change its answer.
    assert ask_cached(app, common, KEY_A)[1] == "miss"


def test_ready_shows_the_knowledge_base_and_a_store_that_cannot_open_degrades_it(
    make_settings: SettingsFactory, serve: Serve, tmp_path: Path
) -> None:
    settings = make_settings()
    ingest(settings.knowledge_path, documents())
    body = httpx.get(f"{serve(settings).url}/admin/ready").json()
    assert body["checks"]["knowledge"] == {
        "ok": True,
        "enabled": True,
        "store": str(settings.knowledge_path),
        "embedding": "offline-hash-v1",
        "dimension": 512,
        "documents": 3,
    }
    assert "knowledge-unavailable" not in body["degraded"]

    other = tmp_path / "other.sqlite"  # filled with vectors of another dimension
    asyncio.run(_fill_with_dimension(other, 64))
    response = httpx.get(f"{serve(make_settings(knowledge_path=other)).url}/ready")
    assert response.status_code == 200  # the agent serves, without the knowledge base
    assert response.json()["checks"]["knowledge"] == {"ok": False, "enabled": True}
    assert "knowledge-unavailable" in response.json()["degraded"]


async def _fill_with_dimension(path: Path, dimension: int) -> None:
    knowledge = knowledge_at(path, dimension=dimension)
    await knowledge.open()
    await knowledge.ingest(documents()[:1])
    await knowledge.close()
