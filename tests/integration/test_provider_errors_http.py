"""Provider failures as the HTTP client sees them, and hostile tool input from a real model."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import openai
import pytest
from langchain_core.messages import ToolMessage

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply, ToolCallSpec
from tests.helpers import chat_body, thread_messages

Serve = Callable[[Settings], ServedApp]


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: object) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
        **extra,
    )


def test_every_provider_failed_is_a_502_the_sdk_does_not_retry(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    primary.script(Fault.server_error(), Fault.server_error())
    app = serve(on_fake(make_settings, primary))

    raw = httpx.post(f"{app.url}/v1/chat/completions", json=chat_body(("user", "hi"), model="m"))
    assert raw.status_code == 502
    assert raw.headers["x-should-retry"] == "false"
    assert raw.json()["error"]["code"] == "all_providers_failed"

    # The SDK would retry a 502 twice by default; x-should-retry: false stops it.
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused")
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    assert len(primary.requests) == 2  # one per request: no retry by the SDK


def test_failure_before_the_first_token_is_an_http_error_not_a_stream(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    primary.script(Fault.rate_limit(retry_after=0))
    app = serve(on_fake(make_settings, primary))

    raw = httpx.post(
        f"{app.url}/v1/chat/completions", json=chat_body(("user", "hi"), model="m", stream=True)
    )

    assert raw.status_code == 502
    assert raw.headers["content-type"].startswith("application/json")


def test_a_stream_broken_after_tokens_ends_with_one_error_event(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    primary.script(Fault.cut_stream("the answer is forty two", after_chunks=2))
    app = serve(on_fake(make_settings, primary))

    with httpx.stream(
        "POST",
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", "hi"), model="m", stream=True),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: ") :] for line in response.iter_lines() if line]

    assert "[DONE]" not in events
    payloads = [json.loads(e) for e in events]
    text = "".join(
        p["choices"][0]["delta"].get("content") or "" for p in payloads if p.get("choices")
    )
    assert text.startswith("the answer")
    assert "error" in payloads[-1]
    assert payloads[-1]["error"]["code"] == "provider_stream_broken"


@pytest.mark.parametrize("expression", ["__import__('os')", "().__class__"])
async def test_hostile_tool_arguments_from_a_model_become_tool_errors(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, expression: str
) -> None:
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": expression})]),
        Reply("That expression is not allowed."),
        Reply("4"),
    )
    settings = on_fake(make_settings, primary)
    app = serve(settings)
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    first = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "run it"}],
        extra_headers={"X-Thread-Id": "hostile"},
    )
    second = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "2+2?"}]
    )

    assert first.choices[0].message.content == "That expression is not allowed."
    assert second.choices[0].message.content == "4"
    tool = next(m for m in await thread_messages(settings, "hostile") if isinstance(m, ToolMessage))
    assert tool.status == "error"
    assert "not allowed" in str(tool.content).lower() or "error" in str(tool.content).lower()
    fed_back = (primary.requests[1].body or {})["messages"]
    assert any(m["role"] == "tool" and "Error" in m["content"] for m in fed_back)
