"""Provider faults that once turned into outages or 5xx, caused for real over HTTP.

Two OpenAI-speaking fake upstreams form one chain (`openai` and `openai-compatible` kinds),
the service runs under uvicorn, and clients are the openai SDK and raw httpx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
import redis

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply
from tests.helpers import chat_body, thread_values

Serve = Callable[[Settings], ServedApp]

FIRST = "openai:gpt-a"
SECOND = "openai-compatible:gpt-b"


def two_providers(
    make_settings: SettingsFactory, a: FakeUpstream, b: FakeUpstream, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "agent_models": {"m": [FIRST, SECOND]},
        "openai_base_url": a.openai_base_url,
        "openai_compatible_base_url": b.openai_base_url,
        "provider_max_retries": 0,
        **extra,
    }
    return make_settings(**values)


def post(app: ServedApp, text: str, **extra: Any) -> httpx.Response:
    headers = extra.pop("headers", {})
    return httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", text), model="m", **extra),
        headers=headers,
        timeout=30,
    )


def streamed_text(response: httpx.Response) -> str:
    events = [line[len("data: ") :] for line in response.text.splitlines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# ------------------------------------------------------------------ every provider blips


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
async def test_a_blip_of_every_provider_is_not_an_outage(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    request: pytest.FixtureRequest,
    shared: bool,
) -> None:
    extra: dict[str, Any] = {"provider_cooldown_failures": 1, "provider_cooldown_seconds": 30}
    if shared:
        extra["redis_url"] = request.getfixturevalue("redis_url")
        extra["redis_prefix"] = request.getfixturevalue("redis_prefix")
    settings = two_providers(make_settings, primary, secondary, **extra)
    app = serve(settings)
    primary.script(Fault.server_error())
    secondary.script(Fault.server_error())

    assert post(app, "during the blip").status_code == 502  # both fail, both cool down
    if shared:  # the cooldowns live in Redis, for every replica
        client = redis.Redis.from_url(extra["redis_url"])
        try:
            assert client.exists(f"{extra['redis_prefix']}:cooldown:{FIRST}:until")
        finally:
            client.close()

    ready = httpx.get(f"{app.url}/admin/ready")
    assert ready.status_code == 200  # still serving: it would try a provider
    body = ready.json()
    assert body["checks"]["providers"]["cooling"] == sorted([FIRST, SECOND])
    assert body["checks"]["providers"]["half_open"] == {"m": FIRST}
    assert "providers-half-open" in body["degraded"]

    # The providers are back (their default is to answer): the next turn is served at once.
    primary.default = Reply("back again")
    answer = post(app, "after the blip", headers={"X-Thread-Id": f"blip-{shared}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "back again"
    attempts = (await thread_values(settings, f"blip-{shared}"))["attempts"]
    assert [(a["provider"], a["outcome"], a.get("half_open")) for a in attempts] == [
        (FIRST, "ok", True)
    ]

    ready = httpx.get(f"{app.url}/admin/ready").json()
    assert ready["checks"]["providers"]["cooling"] == [SECOND]
    assert ready["checks"]["providers"]["half_open"] == {}


# ------------------------------------------------------------- a provider's own 4xx


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (404, openai.NotFoundError),
        (422, openai.UnprocessableEntityError),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_request_every_provider_refuses_is_the_providers_4xx(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    status: int,
    error: type[openai.APIStatusError],
    stream: bool,
) -> None:
    said = f"Unsupported value for 'foo' (status {status})"
    primary.default = Fault.status(status, message=said)
    secondary.default = Fault.status(status, message=said)
    app = serve(two_providers(make_settings, primary, secondary, provider_max_retries=2))

    raw = post(app, "hi", stream=stream)
    assert raw.status_code == status
    assert raw.headers["x-should-retry"] == "false"
    assert raw.headers["content-type"].startswith("application/json")
    body = raw.json()["error"]
    assert said in body["message"]
    assert SECOND in body["message"]  # the last provider that refused it
    assert body["code"] == "provider_rejected_request"
    assert len(primary.requests) == 1  # not retried on the provider
    assert len(secondary.requests) == 1

    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused")
    with pytest.raises(error) as caught:
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert caught.value.status_code == status
    assert len(primary.requests) == 2  # the SDK did not retry either


def test_a_provider_400_falls_through_to_one_that_accepts(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.status(400, message="this model does not take 'tools'"))
    secondary.script(Reply("I can"))
    app = serve(two_providers(make_settings, primary, secondary, provider_max_retries=2))

    answer = post(app, "hi")

    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "I can"
    assert len(primary.requests) == 1


def test_a_context_length_error_still_falls_through(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.context_length())
    secondary.script(Reply("a larger window"))
    app = serve(two_providers(make_settings, primary, secondary))

    assert post(app, "hi").json()["choices"][0]["message"]["content"] == "a larger window"


def test_a_refusal_beside_an_outage_is_a_502(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.status(400, message="nope"))
    secondary.script(Fault.server_error())
    app = serve(two_providers(make_settings, primary, secondary))

    raw = post(app, "hi")

    assert raw.status_code == 502
    assert raw.json()["error"]["code"] == "all_providers_failed"


# ------------------------------------------------------- an upstream that does not stream

SENT = {"json": "application/json", "empty": "no events", "html": "text/html"}
# A client that asked for JSON gets the provider asked for JSON too (no stream to miss).
SENT_WHOLE = {"empty": "text/event-stream", "html": "text/html"}


@pytest.mark.parametrize(
    ("body", "stream"),
    [("json", True), ("empty", True), ("html", True), ("empty", False), ("html", False)],
)
def test_an_upstream_that_does_not_stream_is_a_502_that_names_it(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    body: Any,
    stream: bool,
) -> None:
    primary.default = Fault.not_streaming(body)
    app = serve(
        make_settings(
            agent_models={"m": [FIRST]},
            openai_base_url=primary.openai_base_url,
            provider_max_retries=0,
        )
    )

    raw = post(app, "hi", stream=stream)

    assert raw.status_code == 502, raw.text
    assert raw.headers["x-should-retry"] == "false"
    error = raw.json()["error"]
    assert error["code"] == "all_providers_failed"
    assert FIRST in error["message"]
    assert "malformed" in error["message"]
    assert (SENT if stream else SENT_WHOLE)[body] in error["message"]


@pytest.mark.parametrize("body", ["json", "empty", "html"])
def test_an_upstream_that_does_not_stream_falls_through(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    body: Any,
) -> None:
    primary.script(Fault.not_streaming(body))
    secondary.script(Reply("streamed properly"))
    app = serve(two_providers(make_settings, primary, secondary))

    answer = post(app, "hi", stream=True)

    assert answer.status_code == 200
    assert streamed_text(answer) == "streamed properly"


# --------------------------------------------- a provider's answer that cannot be encoded


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_lone_surrogate_or_nul_in_the_providers_answer_is_repaired_and_stored(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    request: pytest.FixtureRequest,
    store: str,
    stream: bool,
) -> None:
    extra: dict[str, Any] = {}
    if store == "postgres":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    settings = make_settings(
        agent_models={"m": [FIRST]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
        **extra,
    )
    app = serve(settings)
    # The fake writes JSON with ASCII escapes: the SDK reads a lone `\ud800` and a `\u0000`.
    primary.script(Reply("half \ud800 a pair, a \x00 nul"), Reply("next"))
    thread = f"answer-{store}-{stream}"

    answer = post(app, "hi", stream=stream, headers={"X-Thread-Id": thread})

    assert answer.status_code == 200, answer.text
    text = streamed_text(answer) if stream else answer.json()["choices"][0]["message"]["content"]
    if not stream:  # streamed deltas pass as the provider sent them (escaped JSON)
        assert text == "half \ufffd a pair, a  nul"
    stored = (await thread_values(settings, thread))["messages"][-1]
    assert stored.content == "half \ufffd a pair, a  nul"
    follow = post(app, "and then?", headers={"X-Thread-Id": thread})
    assert follow.status_code == 200, follow.text
    sent = (primary.requests[-1].body or {})["messages"]
    assert {"role": "assistant", "content": "half \ufffd a pair, a  nul"} in [
        {"role": m["role"], "content": m["content"]} for m in sent
    ]
