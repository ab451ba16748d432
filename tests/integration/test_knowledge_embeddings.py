"""Embeddings from a provider endpoint (`KNOWLEDGE_EMBEDDINGS=<endpoint>:<model>`), over HTTP.

The fake upstream serves `/v1/embeddings` on 127.0.0.1 with a deterministic bag-of-words
embedding; the client is langchain-openai's `OpenAIEmbeddings` on the official openai SDK,
configured from the settings (the environment-only form) or from a provider file.
"""

from __future__ import annotations

import base64
import math
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import openai
import pytest

from nodes.tools.knowledge import SHARED_NAMESPACE
from server.knowledge.embeddings import OfflineEmbeddings, embeddings_for, offline_spec
from server.knowledge.provider_embeddings import (
    PROBE_TEXT,
    EmbeddingsUnavailableError,
    ProviderEmbeddings,
    build_embeddings,
    endpoint_config,
)
from server.knowledge.service import Document, Knowledge
from server.knowledge.sqlite_store import SqliteVectorStore
from server.knowledge.store import EmbeddingMismatchError, EmbeddingSpec
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import EMBEDDING_DIMENSION, FakeUpstream, Fault
from tests.fakes.upstream.embeddings import embed

MODEL = "fake-embed"
CORPUS = {
    "runbooks/database.md": (
        "# Database runbook\n\n"
        "## Restarting PostgreSQL\n\n"
        "To restart the PostgreSQL cluster, drain the replicas first, then restart the "
        "primary. Replication lag must be below one second before traffic returns.\n\n"
        "## Backups\n\nNightly base backups of PostgreSQL go to the object store; the WAL "
        "is archived hourly and kept for thirty days.\n"
    ),
    "hr/vacation.md": (
        "# Vacation policy\n\n"
        "Every employee has 25 vacation days a year. Request vacation leave in the HR "
        "portal two weeks ahead; unused vacation days carry over until the end of March.\n"
    ),
    "office/coffee.md": (
        "# Coffee machine\n\n"
        "The espresso machine on the third floor is descaled every Friday with citric acid. "
        "Empty the espresso grounds drawer when the red light blinks.\n"
    ),
}
QUESTIONS = {
    "runbooks/database.md": "restart the PostgreSQL cluster replicas",
    "hr/vacation.md": "how many vacation days does an employee get",
    "office/coffee.md": "when is the espresso machine descaled",
}


def documents() -> list[Document]:
    return [
        Document(id=path, text=text, title=text.splitlines()[0][2:], source=path)
        for path, text in CORPUS.items()
    ]


def embedding_requests(upstream: FakeUpstream) -> list[list[str]]:
    """The inputs of each `/v1/embeddings` request, in order."""
    return [r.body["input"] for r in upstream.requests if r.path == "/v1/embeddings" and r.body]


def closed_port_url() -> str:
    """A loopback URL nobody listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def compatible(make_settings: SettingsFactory, primary: FakeUpstream) -> Settings:
    """`openai_compatible:<model>` of the environment-only form, on the fake upstream."""
    return make_settings(
        knowledge_embeddings=f"openai_compatible:{MODEL}",
        openai_compatible_base_url=primary.openai_base_url,
        knowledge_embed_batch=2,
    )


@pytest.fixture
async def opened(compatible: Settings) -> AsyncIterator[tuple[ProviderEmbeddings, EmbeddingSpec]]:
    embeddings, spec = await embeddings_for(compatible)
    assert isinstance(embeddings, ProviderEmbeddings)
    try:
        yield embeddings, spec
    finally:
        await embeddings.aclose()


def provider_file(tmp_path: Path, upstream: FakeUpstream) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[endpoints.embedder]
kind = "openai-compatible"
base_url = "{upstream.openai_base_url}"
api_key_env = "EMBEDDER_KEY"
retries = 0
headers = {{ "X-Team" = "search" }}

[models]
chat = ["offline"]
""",
        encoding="utf-8",
    )
    return path


async def test_an_openai_compatible_endpoint_is_probed_for_its_dimension(
    opened: tuple[ProviderEmbeddings, EmbeddingSpec], primary: FakeUpstream
) -> None:
    embeddings, spec = opened
    assert spec == EmbeddingSpec(f"openai-compatible:{MODEL}", EMBEDDING_DIMENSION)
    (probe,) = [r for r in primary.requests if r.path == "/v1/embeddings"]
    assert probe.body is not None
    assert probe.body["model"] == MODEL
    assert probe.body["input"] == [PROBE_TEXT]  # texts, not token arrays
    assert probe.body["encoding_format"] == "base64"  # the openai SDK's default
    vector = await embeddings.aembed_query("espresso machine")
    assert vector == pytest.approx(embed("espresso machine"), abs=1e-6)


async def test_a_provider_file_endpoint_brings_its_key_and_headers(
    tmp_path: Path,
    make_settings: SettingsFactory,
    primary: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBEDDER_KEY", "sk-embedder-secret")
    settings = make_settings(
        agent_config=provider_file(tmp_path, primary), knowledge_embeddings=f"embedder:{MODEL}"
    )
    embeddings, spec = await embeddings_for(settings)
    assert isinstance(embeddings, ProviderEmbeddings)
    try:
        assert spec == EmbeddingSpec(f"embedder:{MODEL}", EMBEDDING_DIMENSION)
        vectors = await embeddings.aembed_documents(["vacation days", "espresso"])
        assert vectors[0] == pytest.approx(embed("vacation days"), abs=1e-6)
        assert len(vectors) == 2
    finally:
        await embeddings.aclose()
    last = primary.requests[-1]
    assert last.headers["authorization"] == "Bearer sk-embedder-secret"
    assert last.headers["x-team"] == "search"


async def test_documents_are_embedded_in_batches_and_each_question_finds_its_own(
    tmp_path: Path,
    opened: tuple[ProviderEmbeddings, EmbeddingSpec],
    primary: FakeUpstream,
) -> None:
    embeddings, spec = opened
    knowledge = Knowledge(
        SqliteVectorStore(tmp_path / "k.sqlite"), embeddings, spec, chunk_size=150, batch=2
    )
    await knowledge.open()
    try:
        primary.reset()
        docs = documents()
        chunks = [len(knowledge.split(document)) for document in docs]
        assert max(chunks) > 2  # some document needs more than one batch of two
        outcomes = await knowledge.ingest(docs)
        assert [o.chunks for o in outcomes] == chunks
        sent = embedding_requests(primary)
        assert len(sent) == sum(math.ceil(n / 2) for n in chunks)
        assert all(1 <= len(texts) <= 2 for texts in sent)

        for path, question in QUESTIONS.items():
            passages = await knowledge.search([SHARED_NAMESPACE], question, 3)
            assert passages[0].document_id == path, (question, passages)

        assert [o.status for o in await knowledge.ingest(docs)] == ["unchanged"] * 3
        assert len(embedding_requests(primary)) == len(sent) + len(QUESTIONS)  # no re-embedding
    finally:
        await knowledge.close()


async def test_a_store_of_the_offline_embedding_refuses_the_provider_s(
    tmp_path: Path, opened: tuple[ProviderEmbeddings, EmbeddingSpec]
) -> None:
    path = tmp_path / "k.sqlite"
    offline = Knowledge(SqliteVectorStore(path), OfflineEmbeddings(), offline_spec())
    await offline.open()
    try:
        await offline.ingest(documents()[:1])
    finally:
        await offline.close()

    embeddings, spec = opened
    provider = Knowledge(SqliteVectorStore(path), embeddings, spec)
    with pytest.raises(EmbeddingMismatchError) as raised:
        await provider.open()
    await provider.store.close()
    message = str(raised.value)
    assert "offline-hash-v1" in message
    assert f"openai-compatible:{MODEL}" in message


async def test_a_server_error_is_retried_as_configured(
    compatible: Settings, primary: FakeUpstream
) -> None:
    primary.script(Fault.server_error())
    embeddings, spec = await embeddings_for(
        compatible.model_copy(update={"provider_max_retries": 1})
    )
    assert isinstance(embeddings, ProviderEmbeddings)
    await embeddings.aclose()
    assert spec.dimension == EMBEDDING_DIMENSION
    assert len(embedding_requests(primary)) == 2

    primary.reset()
    primary.script(Fault.server_error())
    with pytest.raises(EmbeddingsUnavailableError, match="500"):
        await embeddings_for(compatible.model_copy(update={"provider_max_retries": 0}))
    assert len(embedding_requests(primary)) == 1


async def test_an_unreachable_endpoint_is_a_clear_error_at_start(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        knowledge_embeddings=f"openai_compatible:{MODEL}",
        openai_compatible_base_url=closed_port_url(),
        provider_max_retries=0,
    )
    with pytest.raises(EmbeddingsUnavailableError) as raised:
        await embeddings_for(settings)
    assert raised.value.model == f"openai-compatible:{MODEL}"
    assert "KNOWLEDGE_EMBEDDINGS='openai_compatible:fake-embed'" in str(raised.value)
    assert "cannot embed" in str(raised.value)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("nowhere:model", "unknown endpoint 'nowhere'"),
        ("anthropic:claude-haiku-4-5", "serves no embeddings"),
        ("openai_compatible", "needs a model"),
        ("openai-compatible:m", "needs OPENAI_COMPATIBLE_BASE_URL"),
    ],
)
async def test_a_setting_naming_no_embedding_endpoint_is_refused(
    make_settings: SettingsFactory, setting: str, expected: str
) -> None:
    with pytest.raises(ValueError, match="KNOWLEDGE_EMBEDDINGS") as raised:
        await embeddings_for(make_settings(knowledge_embeddings=setting))
    assert expected in str(raised.value)
    if "unknown" in expected:
        assert "'offline'" in str(raised.value)
        assert "'ollama'" in str(raised.value)


async def test_ollama_uses_its_default_url_and_the_chat_timeout(
    make_settings: SettingsFactory,
) -> None:
    from langchain_ollama import OllamaEmbeddings

    settings = make_settings(
        knowledge_embeddings="ollama:nomic-embed-text", provider_timeouts={"ollama": 300}
    )
    model, config = endpoint_config(settings)
    assert (model, config.base_url, config.timeout) == (
        "nomic-embed-text",
        "http://127.0.0.1:11434",
        300,
    )
    embeddings = build_embeddings(config, model, batch=8)
    try:
        assert isinstance(embeddings.inner, OllamaEmbeddings)
        assert embeddings.model == "ollama:nomic-embed-text"
    finally:
        await embeddings.aclose()


def test_the_fake_serves_floats_and_base64_and_refuses_token_arrays(
    primary: FakeUpstream,
) -> None:
    client = openai.OpenAI(base_url=primary.openai_base_url, api_key="test", max_retries=0)
    as_floats = client.embeddings.create(model=MODEL, input="espresso", encoding_format="float")
    assert as_floats.data[0].embedding == pytest.approx(embed("espresso"))
    raw = client.embeddings.with_raw_response.create(
        model=MODEL, input=["a vacation", "espresso"], encoding_format="base64"
    ).http_response.json()
    packed = base64.b64decode(raw["data"][1]["embedding"])
    assert list(struct.unpack(f"<{EMBEDDING_DIMENSION}f", packed)) == pytest.approx(
        embed("espresso"), abs=1e-6
    )
    assert raw["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        client.embeddings.create(model=MODEL, input=[[1, 2, 3]])
    client.close()


def test_an_embedding_endpoint_failing_mid_service_is_a_tool_error_and_a_503(
    compatible: Settings, primary: FakeUpstream, serve: Callable[[Settings], ServedApp]
) -> None:
    app = serve(compatible.model_copy(update={"provider_max_retries": 0}))
    posted = httpx.post(
        f"{app.url}/admin/knowledge",
        json={"documents": [{"id": p, "text": t, "source": p} for p, t in CORPUS.items()]},
    )
    assert posted.status_code == 200, posted.text
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    def ask(text: str) -> str:
        completion = client.chat.completions.create(
            model="offline", messages=[{"role": "user", "content": text}]
        )
        return completion.choices[0].message.content or ""

    primary.script(Fault.server_error())  # the query's embedding request
    answer = ask("search the knowledge base for vacation days")
    assert answer.startswith("The knowledge_search tool reported an error")
    assert "cannot embed the query now" in answer

    primary.script(Fault.server_error())
    refused = httpx.post(
        f"{app.url}/admin/knowledge", json={"documents": [{"id": "new", "text": "fresh text"}]}
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "knowledge_unavailable"

    answer = ask("search the knowledge base for vacation days")  # the endpoint is back
    assert answer.startswith('According to "Vacation policy" (hr/vacation.md)')
