"""Hostile but valid input over real HTTP: lone surrogates, NUL, bad bytes, lax types.

Bodies are sent as raw bytes with httpx: the openai SDK cannot produce a lone surrogate. The
provider is the fake upstream, so the service's own openai SDK really encodes the request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from openai.types.chat import ChatCompletionContentPartImageParam

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.helpers import NULLABLE, thread_messages

Serve = Callable[[Settings], ServedApp]

JSON = {"content-type": "application/json"}
# `\ud800` is a lone high surrogate, `\udfff` a lone low one, `\u0000` is NUL; as JSON escapes.
HOSTILE = rb"lone \ud800 high, \udfff low, nul \u0000 end"
REPAIRED = "lone \ufffd high, \ufffd low, nul  end"
HOSTILE_DOORS = ["/v1 json", "/v1 stream", "/agent invoke", "/agent stream", "/agent batch"]
AGENT_ENDPOINTS = ["invoke", "stream", "batch", "stream_log", "stream_events"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def on_store(
    request: pytest.FixtureRequest, make_settings: SettingsFactory, primary: FakeUpstream
) -> Settings:
    """Settings on the fake provider, with each checkpointer (PostgreSQL: a fresh database)."""
    store: dict[str, Any] = {}
    if request.param == "postgres":
        store["database_url"] = request.getfixturevalue("postgres_url")
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
        **store,
    )


def user_texts_sent_upstream(upstream: FakeUpstream) -> list[str]:
    """The user messages' text of the last request the provider received."""
    body = upstream.requests[-1].body or {}
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def sse_events(response: httpx.Response) -> list[str]:
    return [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data:")
    ]


def send(app: ServedApp, door: str, text: bytes, thread: str) -> httpx.Response:
    """One turn carrying `text` (raw JSON string bytes, escapes intact) through `door`."""
    v1 = b'{"model":"m","stream":%s,"messages":[{"role":"user","content":"%s"}]}'
    agent_input = b'{"messages":[{"type":"human","content":"%s"}]}' % text
    config = b'{"configurable":{"thread_id":"%s"}}' % thread.encode()
    bodies = {
        "/v1 json": ("/v1/chat/completions", v1 % (b"false", text)),
        "/v1 stream": ("/v1/chat/completions", v1 % (b"true", text)),
        "/agent invoke": ("/agent/invoke", b'{"input":%s,"config":%s}' % (agent_input, config)),
        "/agent stream": ("/agent/stream", b'{"input":%s,"config":%s}' % (agent_input, config)),
        "/agent batch": ("/agent/batch", b'{"inputs":[%s],"config":%s}' % (agent_input, config)),
    }
    path, body = bodies[door]
    headers = {**JSON, "X-Thread-Id": thread} if door.startswith("/v1") else JSON
    return httpx.post(f"{app.url}{path}", content=body, headers=headers, timeout=30)


def answered(door: str, response: httpx.Response) -> str:
    """The answer's text, whichever door produced it (failing on an error in any form)."""
    assert response.status_code == 200, response.text
    if door == "/v1 json":
        return str(response.json()["choices"][0]["message"]["content"])
    if door == "/v1 stream":
        events = sse_events(response)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert all("error" not in c for c in chunks)
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    if door == "/agent stream":
        assert "event: error" not in response.text
        assert "event: end" in response.text
        updates = [json.loads(event) for event in sse_events(response)]
        nodes = [node for update in updates for node in update.values() if isinstance(node, dict)]
        written = [m for node in nodes for m in node.get("messages", [])]
        return str([m for m in written if m["type"] == "ai"][-1]["content"])
    output = response.json()["output"]
    if door == "/agent batch":
        (output,) = output
    return str(output["messages"][-1]["content"])


# --- lone surrogates and NUL -------------------------------------------------------------


@pytest.mark.parametrize("door", HOSTILE_DOORS)
async def test_lone_surrogates_and_nul_are_repaired_answered_and_stored(
    on_store: Settings, serve: Serve, primary: FakeUpstream, door: str
) -> None:
    app = serve(on_store)
    primary.script(Reply("repaired"))

    response = send(app, door, HOSTILE, thread="hostile")

    assert answered(door, response) == "repaired"
    assert user_texts_sent_upstream(primary) == [REPAIRED]
    stored = await thread_messages(on_store, "hostile")
    assert [m.content for m in stored if isinstance(m, HumanMessage)] == [REPAIRED]
    assert [m.content for m in stored if isinstance(m, AIMessage)][-1] == "repaired"


@pytest.mark.parametrize("door", ["/v1 json", "/agent invoke"])
async def test_a_valid_surrogate_pair_is_kept_beside_a_repaired_lone_one(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, door: str
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test"]}, openai_base_url=primary.openai_base_url
    )
    app = serve(settings)
    primary.script(Reply("nice"))

    response = send(app, door, rb"smile \ud83d\ude00, lone \ud83d, \\ud800 as text", "emoji")

    assert answered(door, response) == "nice"
    assert user_texts_sent_upstream(primary) == ["smile \U0001f600, lone \ufffd, \\ud800 as text"]


async def test_a_hostile_body_that_disconnects_still_cancels_its_run(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    """The repaired body is replayed; the client's disconnect must still reach the run."""
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test"]}, openai_base_url=primary.openai_base_url
    )
    app = serve(settings)
    primary.script(Reply(" ".join(f"w{i}" for i in range(60)), chunk_delay=0.05))
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"%s"}]}' % HOSTILE
    async with (
        httpx.AsyncClient(base_url=app.url) as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            content=body,
            headers={**JSON, "X-Thread-Id": "leaving"},
        ) as response,
    ):
        async for line in response.aiter_lines():
            if '"content":"w' in line:
                break
    assert await asyncio.to_thread(primary.wait_for_disconnects, 1, 5.0)
    assert user_texts_sent_upstream(primary) == [REPAIRED]


# --- bytes that are not UTF-8, bodies that are not JSON -----------------------------------


def assert_openai_400(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


BROKEN_BODIES = {
    "invalid utf-8": b'{"model":"m","messages":[{"role":"user","content":"a\xff\xfe b"}]}',
    # UTF-8 cannot carry a surrogate: its three-byte form is invalid UTF-8.
    "utf-8 encoded surrogate": b'{"model":"m","messages":[{"role":"user","content":"\xed\xa0\x80"}]'
    b"}",
    "not json": b"hello, not json",
    "truncated json": b'{"model":"m","messages":[{"role":"user","content":"a',
    # Valid JSON that recursive decoders cannot read: a RecursionError, once a 500 on /agent.
    "nested 50k deep": b'{"model":"m","messages":[{"role":"user","content":"a"}],"x":'
    + b"[" * 50_000
    + b"]" * 50_000
    + b"}",
}


@pytest.mark.parametrize("broken", BROKEN_BODIES)
def test_a_broken_body_is_a_400_on_v1(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, broken: str
) -> None:
    app = serve(make_settings())
    response = httpx.post(
        f"{app.url}/v1/chat/completions", content=BROKEN_BODIES[broken], headers=JSON
    )
    error = assert_openai_400(response)
    assert (error["param"], error["code"]) == (None, "invalid_json")
    assert primary.requests == []


@pytest.mark.parametrize("endpoint", AGENT_ENDPOINTS)
@pytest.mark.parametrize("broken", BROKEN_BODIES)
def test_a_broken_body_is_a_400_on_agent(
    make_settings: SettingsFactory, serve: Serve, endpoint: str, broken: str
) -> None:
    app = serve(make_settings())
    body = BROKEN_BODIES[broken].replace(b'{"model":"m","messages"', b'{"input":{"messages"')
    response = httpx.post(f"{app.url}/agent/{endpoint}", content=body, headers=JSON)
    error = assert_openai_400(response)
    assert (error["param"], error["code"]) == (None, "invalid_json")


# --- strict types, typed content parts, null as "not set" ---------------------------------


def serve_on(make_settings: SettingsFactory, serve: Serve, upstream: FakeUpstream) -> ServedApp:
    """The service with model `m` on the fake upstream."""
    return serve(
        make_settings(
            agent_models={"m": ["openai:gpt-test"]}, openai_base_url=upstream.openai_base_url
        )
    )


def chat(app: ServedApp, **fields: Any) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return httpx.post(f"{app.url}/v1/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", "yes"),
        ("stream", 1),
        ("temperature", "0.5"),
        ("temperature", True),
        ("max_tokens", "5"),
        ("parallel_tool_calls", "false"),
        ("stream_options", {"include_usage": "yes"}),
    ],
)
def test_a_string_or_number_is_not_a_bool_and_a_string_is_not_a_number(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, field: str, value: Any
) -> None:
    app = serve_on(make_settings, serve, primary)
    error = assert_openai_400(chat(app, **{field: value}))
    assert error["param"] == (
        "stream_options.include_usage" if field == "stream_options" else field
    )
    assert primary.requests == []


@pytest.mark.parametrize(
    ("field", "raw", "param"),
    [
        ("logit_bias", b'{"50256": NaN}', "logit_bias.50256"),
        ("temperature", b"NaN", "temperature"),
        ("frequency_penalty", b"-Infinity", "frequency_penalty"),
        ("logit_bias", b'{"1": 1e400}', "logit_bias.1"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_nan_and_infinity_are_400_not_a_crash_in_the_provider_sdk(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    field: str,
    raw: bytes,
    param: str,
    stream: bool,
) -> None:
    app = serve_on(make_settings, serve, primary)
    body = (
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":'
        + (b"true" if stream else b"false")
        + b',"'
        + field.encode()
        + b'":'
        + raw
        + b"}"
    )
    response = httpx.post(f"{app.url}/v1/chat/completions", content=body, headers=JSON)
    error = assert_openai_400(response)
    assert error["param"] == param
    assert primary.requests == []


def test_null_is_not_set_for_every_nullable_parameter(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve_on(make_settings, serve, primary)
    primary.script(Reply("all null"))

    response = chat(app, **dict.fromkeys(NULLABLE))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")  # null stream: JSON
    assert response.json()["choices"][0]["message"]["content"] == "all null"
    assert response.json()["usage"]["total_tokens"] > 0
    sent = primary.requests[-1].body or {}
    assert "temperature" not in sent
    assert "seed" not in sent
    assert "logit_bias" not in sent


def test_an_int_is_a_valid_float_but_a_numeric_string_is_not(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve_on(make_settings, serve, primary)
    primary.script(Reply("ok"))
    assert chat(app, temperature=1, top_p=1, presence_penalty=0).status_code == 200
    assert (primary.requests[-1].body or {})["temperature"] == 1
    assert assert_openai_400(chat(app, temperature="1"))["param"] == "temperature"
    assert len(primary.requests) == 1


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "bogus"}]},
            "messages[0].content[1].type",
        ),
        (
            {"role": "user", "content": [{"type": "refusal", "refusal": "no"}]},
            "messages[0].content[0].type",
        ),
        (
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
            "messages[0].content[0].type",
        ),
        (
            {"role": "tool", "tool_call_id": "c", "content": [{"type": "file", "file": {}}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "role": "assistant",
                "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
            },
            "messages[0].content[0].type",
        ),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://x.test/a", "detail": "max"}}
                ],
            },
            "messages[0].content[0].image_url.detail",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "ogg"}}],
            },
            "messages[0].content[0].input_audio.format",
        ),
        ({"role": "user", "content": [{"type": "text", "text": 5}]}, "messages[0].content[0].text"),
        ({"role": "user", "content": 5}, "messages[0].content"),
        ({"role": "robot", "content": "x"}, "messages[0].role"),
    ],
)
def test_content_parts_are_typed_per_role_and_errors_name_the_part(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    message: dict[str, Any],
    param: str,
) -> None:
    app = serve_on(make_settings, serve, primary)
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=[message])  # type: ignore[list-item]  # malformed on purpose

    assert caught.value.param == param
    assert param in caught.value.message
    assert primary.requests == []


def test_every_part_type_a_role_allows_reaches_the_provider_in_openai_shape(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve_on(make_settings, serve, primary)
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    primary.script(Reply("I see a cat."))
    image: ChatCompletionContentPartImageParam = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
    }
    # Not OpenAI's (nor the SDK's type): not passed on.
    noted: ChatCompletionContentPartImageParam = {**image, "cache_control": {"type": "ephemeral"}}  # type: ignore[typeddict-unknown-key]

    answer = client.chat.completions.create(
        model="m",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "What is it?"}, noted]},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "A"}, {"type": "refusal", "refusal": "no"}],
            },
            {"role": "user", "content": "And now?"},
        ],
    )

    assert answer.choices[0].message.content == "I see a cat."
    sent = (primary.requests[-1].body or {})["messages"]
    users = [m for m in sent if m["role"] == "user"]
    assert users[0]["content"] == [{"type": "text", "text": "What is it?"}, image]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert assistant["content"] == "A"
    assert any(m["role"] == "system" and "Be brief." in str(m["content"]) for m in sent)


@pytest.mark.parametrize("endpoint", ["invoke", "stream", "batch"])
@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"type": "bogus", "content": "hi"}], "messages[0]"),
        ([{"type": "human", "content": 5}], "messages[0]"),
        (None, "messages"),
    ],
    ids=["unknown-type", "content-not-text", "no-messages"],
)
def test_invalid_agent_input_is_a_400_on_every_endpoint(
    make_settings: SettingsFactory,
    serve: Serve,
    endpoint: str,
    messages: list[dict[str, Any]] | None,
    param: str,
) -> None:
    app = serve(make_settings())
    value: dict[str, Any] = {} if messages is None else {"messages": messages}
    body = {"inputs": [value]} if endpoint == "batch" else {"input": value}

    response = httpx.post(f"{app.url}/agent/{endpoint}", json=body, timeout=30)

    error = assert_openai_400(response)
    assert str(error["param"]).startswith(param)
