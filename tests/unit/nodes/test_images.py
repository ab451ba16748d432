"""Images in message content: standard blocks, references in the thread, the same digest."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from nodes.images import (
    MISSING_IMAGE,
    REFERENCE_PREFIX,
    check_image_url,
    externalize,
    has_image,
    image_key,
    resolve,
    standard_image,
)
from nodes.messages import comparable_content, content_digest
from nodes.providers.offline.reply import CANNOT_SEE_IMAGES, offline_reply
from server.stores.images import SqliteImageStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{B64}"
SHA = hashlib.sha256(PNG).hexdigest()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteImageStore]:
    async with aiosqlite.connect(str(tmp_path / "images.sqlite")) as conn:
        images = SqliteImageStore(conn)
        await images.setup()
        yield images


def test_a_data_url_becomes_a_base64_block_and_a_link_a_url_block() -> None:
    assert standard_image(DATA_URL) == {"type": "image", "base64": B64, "mime_type": "image/png"}
    assert standard_image("https://x.test/cat.jpg", "low") == {
        "type": "image",
        "url": "https://x.test/cat.jpg",
        "extras": {"detail": "low"},
    }


@pytest.mark.parametrize(
    "url",
    ["ftp://x.test/a.png", "data:image/png;base64,@@@", "data:text/plain;base64,AAAA", "x"],
)
def test_urls_a_provider_cannot_take_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"http|not base64"):
        check_image_url(url)


def test_an_image_has_one_key_in_every_form() -> None:
    forms: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "high"}},
        {"type": "image", "base64": B64, "mime_type": "image/png"},
        {"type": "image", "url": DATA_URL},
        {"type": "image", "url": f"{REFERENCE_PREFIX}{SHA}", "mime_type": "image/png"},
    ]
    assert {image_key(form) for form in forms} == {f"sha256:{SHA}"}
    other = base64.b64encode(PNG + b"!").decode()
    assert image_key({"type": "image", "base64": other, "mime_type": "image/png"}) != (
        f"sha256:{SHA}"
    )
    assert image_key({"type": "text", "text": "hi"}) is None


def test_inline_and_referenced_content_compare_and_digest_the_same() -> None:
    inline: list[str | dict[str, Any]] = [
        {"type": "text", "text": "what  is it?"},
        standard_image(DATA_URL),
    ]
    stored: list[str | dict[str, Any]] = [
        {"type": "text", "text": "what is it?"},
        {"type": "image", "url": f"{REFERENCE_PREFIX}{SHA}", "mime_type": "image/png"},
    ]
    openai_part: list[str | dict[str, Any]] = [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
    ]
    assert comparable_content(inline) == comparable_content(stored)
    assert content_digest(inline) == content_digest(stored) == content_digest(openai_part)
    assert content_digest(inline) != content_digest("what is it?")


async def test_externalize_saves_once_and_resolve_brings_the_bytes_back(
    store: SqliteImageStore,
) -> None:
    block = {**standard_image(DATA_URL), "extras": {"detail": "low"}}
    first = HumanMessage([{"type": "text", "text": "look"}, block], id="m1")
    again = HumanMessage([block], id="m2")
    text = AIMessage("a cat", id="a1")

    kept = await externalize([first, text, again], store)

    assert [m.id for m in kept] == ["m1", "a1", "m2"]
    assert kept[1] is text
    reference = {
        "type": "image",
        "url": f"{REFERENCE_PREFIX}{SHA}",
        "mime_type": "image/png",
        "extras": {"detail": "low"},
    }
    assert kept[0].content == [{"type": "text", "text": "look"}, reference]
    assert B64 not in str(kept)
    assert list(await store.load([SHA])) == [SHA]

    sent = await resolve(kept, store)

    assert sent[0].content == [{"type": "text", "text": "look"}, block]
    assert sent[2].content == [block]


async def test_a_reference_whose_image_is_gone_becomes_a_note(store: SqliteImageStore) -> None:
    lost = HumanMessage([{"type": "image", "url": f"{REFERENCE_PREFIX}{'0' * 64}"}])
    sent = await resolve([lost], store)
    assert sent[0].content == [{"type": "text", "text": MISSING_IMAGE}]
    assert (await resolve([lost], None))[0].content == sent[0].content


async def test_messages_without_references_are_left_alone() -> None:
    messages = [HumanMessage([standard_image(DATA_URL)]), HumanMessage("hi")]
    assert await resolve(messages, None) == messages


def test_has_image() -> None:
    assert has_image([{"type": "text", "text": "a"}, standard_image("https://x.test/a.png")])
    assert not has_image("a picture of a cat")
    assert not has_image([{"type": "text", "text": "a"}])


def test_the_offline_model_says_it_cannot_see_images_and_answers_the_text() -> None:
    question = HumanMessage([{"type": "text", "text": "what did I say?"}, standard_image(DATA_URL)])
    reply = offline_reply([HumanMessage("hello"), AIMessage("hi"), question], [])
    assert isinstance(reply.content, str)
    assert reply.content.startswith(CANNOT_SEE_IMAGES)
    assert 'Earlier you said: "hello"' in reply.content
    assert CANNOT_SEE_IMAGES not in str(
        offline_reply([HumanMessage("what did I say?")], []).content
    )


def test_the_offline_model_still_calls_a_tool_for_the_text_of_an_image_message() -> None:
    question = HumanMessage(
        [{"type": "text", "text": "What is 17 * 23?"}, standard_image(DATA_URL)]
    )
    reply = offline_reply([question], ["calculator"])
    assert [call["name"] for call in reply.tool_calls] == ["calculator"]


async def test_an_openai_part_is_kept_by_reference_with_its_detail(store: SqliteImageStore) -> None:
    part = {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "high"}}
    (kept,) = await externalize([HumanMessage([part])], store)
    (sent,) = await resolve([kept], store)
    assert kept.content == [
        {
            "type": "image",
            "url": f"{REFERENCE_PREFIX}{SHA}",
            "mime_type": "image/png",
            "extras": {"detail": "high"},
        }
    ]
    assert sent.content == [{**standard_image(DATA_URL), "extras": {"detail": "high"}}]
