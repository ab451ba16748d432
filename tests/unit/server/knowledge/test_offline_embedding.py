"""The offline lexical embedding and the splitting of documents into chunks."""

from __future__ import annotations

import math
from typing import cast

from server.knowledge.embeddings import OFFLINE_DIMENSION, OfflineEmbeddings, offline_spec
from server.knowledge.service import Document, Knowledge, content_hash
from server.knowledge.store import VectorStore


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_deterministic_unit_length_and_lexical() -> None:
    embed = OfflineEmbeddings()
    a = embed.embed_query("How do I restart the database?")
    assert len(a) == OFFLINE_DIMENSION
    assert math.isclose(math.sqrt(dot(a, a)), 1.0)
    assert a == OfflineEmbeddings().embed_query("How do I restart the database?")
    near = embed.embed_query("Restarting a database cluster")  # trigrams: restart~restarting
    far = embed.embed_query("Vacation days for employees")
    assert dot(a, near) > 0.3 > 0.1 > dot(a, far)
    assert embed.embed_documents(["x y", "x y"]) == [embed.embed_query("x y")] * 2


def test_text_without_words_is_the_zero_vector() -> None:
    assert OfflineEmbeddings(8).embed_query("?! -- ...") == [0.0] * 8


def test_question_words_do_not_count() -> None:
    embed = OfflineEmbeddings()
    assert embed.embed_query("what do the docs say about backups") == embed.embed_query("backups")


class NoStore:
    """A stand-in store: splitting a document never reaches it."""

    where = "nowhere"


def test_short_pieces_join_the_next_chunk() -> None:
    store = cast(VectorStore, NoStore())
    knowledge = Knowledge(store, OfflineEmbeddings(), offline_spec(), chunk_size=200)
    text = "# Title\n\n## Section\n\n" + "word " * 60 + "\n\n" + "more " * 60
    chunks = knowledge.split(Document(id="d", text=text))
    assert chunks[0].startswith("# Title\n\n## Section\n\nword")
    assert all(len(chunk) >= 50 for chunk in chunks)
    assert knowledge.split(Document(id="d", text="   ", title="T")) == ["T"]


def test_the_content_hash_covers_title_and_text() -> None:
    base = content_hash(Document(id="a", text="x", title="t"))
    assert base == content_hash(Document(id="b", text="x", title="t", source="elsewhere"))
    assert base != content_hash(Document(id="a", text="x", title="u"))
    assert base != content_hash(Document(id="a", text="y", title="t"))
