"""Small contracts that client libraries hold the service to, on the wire.

A streamed tool call opens the assistant message with `"content": null`, as OpenAI's does
(the Vercel AI SDK adds an empty text part for `""`); a 401 carries RFC 6750's challenge
with `error="invalid_token"` on every door (a bare `Bearer` makes the MCP Inspector start
an OAuth flow).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec

Serve = Callable[[Settings], ServedApp]

WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
    )


def raw_deltas(url: str, body: dict[str, Any]) -> list[str]:
    """The `delta` of each chunk of a streamed chat completion, as the raw JSON text sent."""
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as answer:
        assert answer.status_code == 200
        frames = [line[len("data: ") :] for line in answer.iter_lines() if line]
    deltas: list[str] = []
    for frame in frames[:-1]:
        chunk = json.loads(frame)
        if chunk["choices"]:
            # The delta's own bytes: compact JSON, the keys in the order they were sent.
            deltas.append(json.dumps(chunk["choices"][0]["delta"], separators=(",", ":")))
    assert frames[-1] == "[DONE]"
    return deltas


def test_a_streamed_tool_call_opens_with_content_null_and_text_with_empty_content(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]), Reply("Hi there")
    )
    ask = {"model": "m", "stream": True, "tools": [WEATHER]}
    called = raw_deltas(app.url, {**ask, "messages": [{"role": "user", "content": "Oslo?"}]})
    assert called[0].startswith('{"role":"assistant","content":null,"tool_calls":[{"index":0,')
    assert all('"content":""' not in delta for delta in called)
    assert called[1:] == ["{}"]  # then the finish chunk

    said = raw_deltas(app.url, {**ask, "messages": [{"role": "user", "content": "Hi"}]})
    assert said[0] == '{"role":"assistant","content":""}'  # as OpenAI opens text
    assert said[1:] == ['{"content":"Hi"}', '{"content":" there"}', "{}"]

    # The openai SDK reads the same stream: one tool call, and no text at all.
    primary.script(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}, "c2")]))
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    with client:
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Rome?"}],
                tools=[WEATHER],
                stream=True,
            )
        )
    assert [c.choices[0].delta.content for c in chunks if c.choices] == [None, None]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert [call.id for call in first.tool_calls or []] == ["c2"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/chat/completions", {"model": "offline", "messages": []}),
        ("POST", "/v1/responses", {"model": "offline", "input": "hi"}),
        ("GET", "/v1/models", None),
        ("POST", "/agent/invoke", {"input": {"messages": []}}),
        ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ],
)
def test_every_door_answers_401_with_an_invalid_token_challenge_not_an_oauth_one(
    make_settings: SettingsFactory,
    serve: Serve,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    app = serve(make_settings(api_keys=["sk-right"]))
    for headers, code in [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key"),
    ]:
        answer = httpx.request(
            method,
            f"{app.url}{path}",
            json=body,
            headers={"Accept": "application/json, text/event-stream", **headers},
            timeout=30,
        )
        assert answer.status_code == 401, answer.text
        error = answer.json()["error"]
        assert (error["type"], error["code"]) == ("authentication_error", code)
        assert answer.headers["www-authenticate"] == (
            f'Bearer realm="agent-service", error="invalid_token", '
            f'error_description="{error["message"]}"'
        )
