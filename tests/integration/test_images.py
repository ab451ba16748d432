"""Images from chat clients through the /v1 door: native shapes upstream, stored once per thread.

The openai SDK is the client; providers are the fake upstreams over real HTTP (OpenAI,
Anthropic, Ollama); threads live in real SQLite and real PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from collections.abc import Callable
from typing import Any, Literal

import httpx
import openai
import psycopg
import pytest
from langchain_core.messages import HumanMessage
from langserve import RemoteRunnable
from openai.types.chat import (
    ChatCompletionContentPartImageParam,
    ChatCompletionMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat.chat_completion_content_part_image_param import ImageURL

from nodes.images import REFERENCE_PREFIX
from nodes.providers.offline.reply import CANNOT_SEE_IMAGES
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.ollama import FakeOllama, OllamaReply
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, RecordedRequest, Reply
from tests.helpers import AgentRunnable, thread_messages

Serve = Callable[[Settings], ServedApp]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{B64}"
LINK = "https://images.example/cat.png"


def sdk(app: ServedApp, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{app.url}/v1", api_key="unused", max_retries=0, default_headers=headers
    )


def image_part(
    url: str, detail: Literal["auto", "low", "high"] | None = None
) -> ChatCompletionContentPartImageParam:
    image: ImageURL = {"url": url}
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def question(
    text: str, *images: ChatCompletionContentPartImageParam
) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": [{"type": "text", "text": text}, *images]}


def user_content(request: RecordedRequest) -> list[Any]:
    """The content of the first user message of a recorded provider request."""
    messages = (request.body or {})["messages"]
    first: list[Any] = next(m for m in messages if m["role"] == "user")["content"]
    return first


# --- each provider gets its own shape -----------------------------------------------------


def test_openai_gets_image_url_parts_with_their_detail_on_every_turn(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-vision"]}, openai_base_url=primary.openai_base_url
    )
    client = sdk(serve(settings), **{"X-OpenWebUI-Chat-Id": "openai-vision"})
    primary.script(Reply("A cat."), Reply("Grey."))
    first = question("What is it?", image_part(DATA_URL, "low"), image_part(LINK))

    client.chat.completions.create(model="m", messages=[first])
    # Open WebUI resends the whole history, the image inline again.
    history: list[ChatCompletionMessageParam] = [
        first,
        {"role": "assistant", "content": "A cat."},
        question("Its colour?"),
    ]
    answer = client.chat.completions.create(model="m", messages=history)

    assert answer.choices[0].message.content == "Grey."
    native = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": DATA_URL, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": LINK}},
    ]
    assert [user_content(r) for r in primary.requests] == [native, native]


def test_anthropic_gets_image_blocks_with_a_source(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["anthropic:claude-vision"]},
        anthropic_base_url=primary.anthropic_base_url,
    )
    client = sdk(serve(settings), **{"X-Thread-Id": "anthropic-vision"})
    primary.script(Reply("Two cats."))

    answer = client.chat.completions.create(
        model="m",
        messages=[question("How many?", image_part(DATA_URL), image_part(LINK, "high"))],
    )

    assert answer.choices[0].message.content == "Two cats."
    (request,) = primary.requests
    assert request.path == "/v1/messages"
    assert user_content(request) == [
        {"type": "text", "text": "How many?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64}},
        {"type": "image", "source": {"type": "url", "url": LINK}},
    ]


def test_ollama_gets_inline_images_and_an_image_link_falls_through(
    make_settings: SettingsFactory, serve: Serve, ollama: FakeOllama, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["ollama:llava", "openai:gpt-vision"]},
        ollama_base_url=ollama.base_url,
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
    )
    client = sdk(serve(settings))
    ollama.script(OllamaReply("A cat."))
    primary.script(Reply("A linked cat."))

    inline = client.chat.completions.create(
        model="m",
        messages=[question("What is it?", image_part(DATA_URL))],
    )
    linked = client.chat.completions.create(
        model="m",
        messages=[question("And this?", image_part(LINK))],
    )

    assert (inline.choices[0].message.content or "").strip() == "A cat."
    (sent,) = ollama.requests  # Ollama takes no URL: the link never reached it
    user = next(m for m in sent["messages"] if m["role"] == "user")
    assert user["images"] == [B64]
    assert "What is it?" in user["content"]
    assert linked.choices[0].message.content == "A linked cat."
    assert user_content(primary.requests[0])[1] == {"type": "image_url", "image_url": {"url": LINK}}


# --- a provider that refuses images -------------------------------------------------------


def vision_chain(
    make_settings: SettingsFactory, text: FakeUpstream, vision: FakeUpstream
) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-text", "openai-compatible:gpt-vision"]},
        openai_base_url=text.openai_base_url,
        openai_compatible_base_url=vision.openai_base_url,
        provider_max_retries=0,
    )


def test_a_provider_that_refuses_images_falls_through_to_one_that_takes_them(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.rejects_images = True
    primary.script(Reply("Plain text answer."))
    secondary.script(Reply("I see a cat."))
    client = sdk(serve(vision_chain(make_settings, primary, secondary)))

    seen = client.chat.completions.create(
        model="m",
        messages=[question("What is it?", image_part(DATA_URL))],
    )
    text = client.chat.completions.create(model="m", messages=[question("Hello?")])

    assert seen.choices[0].message.content == "I see a cat."
    assert user_content(primary.requests[0])[1]["type"] == "image_url"  # it was asked first
    assert user_content(secondary.requests[0])[1]["image_url"]["url"] == DATA_URL
    assert text.choices[0].message.content == "Plain text answer."  # no image: it answers


def test_when_every_provider_refuses_images_the_client_reads_why(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.rejects_images = secondary.rejects_images = True
    client = sdk(serve(vision_chain(make_settings, primary, secondary)))

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m",
            messages=[question("What is it?", image_part(DATA_URL))],
        )

    assert caught.value.code == "provider_rejected_request"
    assert "does not support image input" in caught.value.message
    assert len(primary.requests) == len(secondary.requests) == 1


# --- the offline model --------------------------------------------------------------------


def test_the_offline_model_says_it_cannot_see_the_image_and_answers_the_text(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    client = sdk(serve(make_settings()))

    answer = client.chat.completions.create(
        model="offline",
        messages=[question("What is 17 * 23?", image_part(DATA_URL))],
    )

    content = answer.choices[0].message.content or ""
    assert content.startswith(CANNOT_SEE_IMAGES)
    assert "17 * 23 = 391" in content


# --- stored once --------------------------------------------------------------------------


def on_vision(
    make_settings: SettingsFactory, upstream: FakeUpstream, database_url: str | None = None
) -> Settings:
    """One OpenAI vision provider; PostgreSQL checkpoints when `database_url` is given."""
    extra: dict[str, Any] = {} if database_url is None else {"database_url": database_url}
    return make_settings(
        agent_models={"m": ["openai:gpt-vision"]}, openai_base_url=upstream.openai_base_url, **extra
    )


def checkpoint_rows(settings: Settings) -> list[bytes]:
    """Every stored piece of checkpoint data (checkpoints, channel blobs, pending writes)."""
    if settings.database_url is not None:
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            query = (
                "SELECT blob FROM checkpoint_blobs WHERE blob IS NOT NULL"
                " UNION ALL SELECT blob FROM checkpoint_writes"
                " UNION ALL SELECT convert_to(checkpoint::text, 'UTF8') FROM checkpoints"
            )
            return [bytes(row[0]) for row in conn.execute(query).fetchall()]
    with sqlite3.connect(settings.sqlite_path) as lite:
        query = "SELECT checkpoint FROM checkpoints UNION ALL SELECT value FROM writes"
        return [bytes(row[0]) for row in lite.execute(query).fetchall()]


def stored_images(settings: Settings) -> list[tuple[str, int]]:
    """`(digest, size)` of every row of the `images` table."""
    query = "SELECT digest, length(data) FROM images"
    if settings.database_url is not None:
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            return [(str(d), int(n)) for d, n in conn.execute(query).fetchall()]
    with sqlite3.connect(settings.sqlite_path) as lite:
        return [(str(d), int(n)) for d, n in lite.execute(query).fetchall()]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_a_ten_turn_thread_stores_its_image_once(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    settings = on_vision(make_settings, primary, url)
    client = sdk(serve(settings), **{"X-OpenWebUI-Chat-Id": "ten-turns"})
    photo = os.urandom(100_000)  # 100 KB that no compression shrinks
    photo_url = f"data:image/jpeg;base64,{base64.b64encode(photo).decode()}"
    history: list[ChatCompletionMessageParam] = [
        question("Turn 1: what is it?", image_part(photo_url))
    ]
    first_id: str | None = None
    for turn in range(1, 11):
        primary.script(Reply(f"Answer {turn}."))
        answer = client.chat.completions.create(model="m", messages=history)
        history.append({"role": "assistant", "content": answer.choices[0].message.content})
        history.append(question(f"Turn {turn + 1}?"))
        if turn == 1:
            first_id = (await thread_messages(settings, "ten-turns"))[0].id

    stored = await thread_messages(settings, "ten-turns")
    assert len(stored) == 20
    assert stored[0].id == first_id  # every resent turn matched the thread: no fork
    reference = f"{REFERENCE_PREFIX}{hashlib.sha256(photo).hexdigest()}"
    image = stored[0].content[1]
    assert isinstance(image, dict)
    assert image["url"] == reference
    assert stored_images(settings) == [(hashlib.sha256(photo).hexdigest(), 100_000)]
    # Every turn's provider request carried the image itself.
    assert all(user_content(r)[1]["image_url"]["url"] == photo_url for r in primary.requests)
    assert len(primary.requests) == 10
    # Not one checkpoint holds the image (each of them did before: 1.4 MB in all).
    rows = checkpoint_rows(settings)
    needle = base64.b64encode(photo).decode()[:2000].encode()
    assert not any(needle in row for row in rows)
    assert max(len(row) for row in rows) < 100_000
    assert sum(len(row) for row in rows) < 250_000


async def test_a_stateless_run_stores_no_image(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_vision(make_settings, primary)
    client = sdk(serve(settings))
    primary.script(Reply("A cat."))

    client.chat.completions.create(
        model="m",
        messages=[question("What is it?", image_part(DATA_URL))],
    )

    assert user_content(primary.requests[0])[1]["image_url"]["url"] == DATA_URL
    assert stored_images(settings) == []


def test_the_langserve_door_keeps_a_threads_images_by_reference_too(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_vision(make_settings, primary)
    runnable: AgentRunnable = RemoteRunnable(f"{serve(settings).url}/agent/")
    primary.script(Reply("A cat."))
    image = {"type": "image", "base64": B64, "mime_type": "image/png"}

    output = runnable.invoke(
        {"messages": [HumanMessage([{"type": "text", "text": "What is it?"}, image])]},
        {"configurable": {"thread_id": "playground-image"}},
    )

    assert output["messages"][-1].content == "A cat."
    assert user_content(primary.requests[0])[1] == {
        "type": "image_url",
        "image_url": {"url": DATA_URL},
    }
    digest = hashlib.sha256(PNG).hexdigest()
    assert stored_images(settings) == [(digest, len(PNG))]
    assert B64 not in str(checkpoint_rows(settings))


@pytest.mark.parametrize("thread_id", [None, "playground-other"], ids=["stateless", "thread"])
def test_a_client_cannot_read_a_stored_image_by_naming_its_digest(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, thread_id: str | None
) -> None:
    settings = on_vision(make_settings, primary)
    url = f"{serve(settings).url}/agent"
    primary.script(Reply("A cat."))
    image = {"type": "image", "base64": B64, "mime_type": "image/png"}
    first: AgentRunnable = RemoteRunnable(f"{url}/")
    first.invoke(
        {"messages": [HumanMessage([{"type": "text", "text": "What is it?"}, image])]},
        {"configurable": {"thread_id": "playground-owner"}},
    )
    digest = hashlib.sha256(PNG).hexdigest()
    assert stored_images(settings) == [(digest, len(PNG))]
    primary.reset()

    reference = {"type": "image", "url": f"agent-image:sha256:{digest}", "mime_type": "image/png"}
    config = {"configurable": {"thread_id": thread_id}} if thread_id else {}
    sneaky = {"type": "human", "content": [{"type": "text", "text": "And this?"}, reference]}
    response = httpx.post(
        f"{url}/invoke", json={"input": {"messages": [sneaky]}, "config": config}, timeout=30
    )

    assert response.status_code == 400
    assert "agent-image: references are the service's own" in response.json()["error"]["message"]
    assert primary.requests == []  # nothing reached a provider, nothing was resolved
