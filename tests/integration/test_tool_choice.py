"""`tool_choice` obliges the model to call the client's tools, on both doors and every kind.

What the provider receives is read from the fake upstreams: on each model call, the tools
offered and the `tool_choice` sent. `required` and a named client tool offer the client's
tools alone (a server tool would be run here and the client would get text with
`finish_reason: "stop"`), `none` offers nothing, and a forced choice never outlives the
server's own tools' results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.ollama import FakeOllama, OllamaReply
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.fakes.upstream.recording import RecordedRequest
from tests.helpers import SDK_WEATHER_TOOL as WEATHER_TOOL

Serve = Callable[[Settings], ServedApp]

TIME_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "local_time",
        "description": "The time where the user is, read from their device",
        "parameters": {"type": "object", "properties": {}},
    },
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}
QUESTION = "What is 17 * 23, and what time is it? Also the weather in Oslo."
"""Words that select the server's calculator and clock, were they offered."""


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
    )


def sdk(app: ServedApp, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{app.url}/v1", api_key="unused", max_retries=0, default_headers=headers
    )


def offered(request: RecordedRequest | dict[str, Any]) -> set[str]:
    """The tool names of one provider request (OpenAI's, Anthropic's or Ollama's shape)."""
    body = request.body if isinstance(request, RecordedRequest) else request
    tools = (body or {}).get("tools") or []
    return {tool["function"]["name"] if "function" in tool else tool["name"] for tool in tools}


def chat_call(
    client: openai.OpenAI, *, stream: bool, **request: Any
) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """The tool calls (name, arguments) and the finish reason, streamed or not."""
    if not stream:
        answer = client.chat.completions.create(**request)
        calls = answer.choices[0].message.tool_calls or []
        named = [(c.function.name, json.loads(c.function.arguments)) for c in calls]
        return named, answer.choices[0].finish_reason
    chunks = list(client.chat.completions.create(**request, stream=True))
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    names = [d.function.name for d in deltas if d.function and d.function.name]
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    return [(name, json.loads(arguments)) for name in names], finish


# --- the chat door -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("choice", "sent"), [("required", "required"), (NAMED, NAMED)])
def test_a_forced_choice_offers_only_the_clients_tools(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    stream: bool,
    choice: Any,
    sent: Any,
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)))
    primary.script(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]))

    calls, finish = chat_call(
        client,
        stream=stream,
        model="m",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=choice,
    )

    assert calls == [("get_weather", {"city": "Oslo"})]
    assert finish == "tool_calls"
    [request] = primary.requests
    assert offered(request) == {"get_weather", "local_time"}
    assert (request.body or {})["tool_choice"] == sent


def test_required_holds_again_when_the_client_sends_its_results(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)), **{"X-Thread-Id": "forced"})
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply(tool_calls=[ToolCallSpec("local_time", {}, "c2")]),
    )
    history: list[Any] = [{"role": "user", "content": QUESTION}]
    tools: list[Any] = [WEATHER_TOOL, TIME_TOOL]
    first = client.chat.completions.create(
        model="m", messages=history, tools=tools, tool_choice="required"
    )
    calls = first.choices[0].message.tool_calls
    assert calls is not None
    call = calls[0]
    history += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"},
    ]

    second = client.chat.completions.create(
        model="m", messages=history, tools=tools, tool_choice="required"
    )

    assert second.choices[0].finish_reason == "tool_calls"
    resumed = primary.requests[1].body or {}
    assert [m["role"] for m in resumed["messages"]][-2:] == ["assistant", "tool"]
    assert offered(resumed) == {"get_weather", "local_time"}
    assert resumed["tool_choice"] == "required"


def test_required_without_client_tools_forces_a_server_tool_once(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "17*23"})]),
        Reply("17 * 23 = 391."),
    )

    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": QUESTION}], tool_choice="required"
    )

    assert answer.choices[0].message.content == "17 * 23 = 391."
    assert answer.choices[0].finish_reason == "stop"
    forced, after = (request.body or {} for request in primary.requests)
    assert forced["tool_choice"] == "required"
    assert "calculator" in offered(forced)
    # The server's tool ran: the model answers from its result, no longer obliged to call.
    assert [m["role"] for m in after["messages"]][-1] == "tool"
    assert "tool_choice" not in after
    assert "calculator" in offered(after)


def test_none_offers_no_tools_on_a_resumed_run_too(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)), **{"X-Thread-Id": "none"})
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply("Sunny in Oslo."),
        Reply("Hello."),
    )
    history: list[Any] = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model="m", messages=history, tools=[WEATHER_TOOL])
    calls = first.choices[0].message.tool_calls
    assert calls is not None
    call = calls[0]
    history += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"},
    ]

    resumed = client.chat.completions.create(
        model="m", messages=history, tools=[WEATHER_TOOL], tool_choice="none"
    )
    fresh = sdk(serve(on_fake(make_settings, primary))).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )

    assert resumed.choices[0].message.content == "Sunny in Oslo."
    assert fresh.choices[0].message.content == "Hello."
    assert offered(primary.requests[0]) >= {"get_weather", "calculator"}
    for request in primary.requests[1:]:
        assert offered(request) == set()
        assert "tool_choice" not in (request.body or {})


# --- the Responses door ------------------------------------------------------------------

RESPONSES_WEATHER: dict[str, Any] = {"type": "function", **WEATHER_TOOL["function"]}
RESPONSES_TIME: dict[str, Any] = {"type": "function", **TIME_TOOL["function"]}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    ("choice", "sent"),
    [("required", "required"), ({"type": "function", "name": "get_weather"}, NAMED)],
)
def test_the_responses_door_offers_only_the_clients_tools_when_forced(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    stream: bool,
    choice: Any,
    sent: Any,
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)))
    primary.script(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]))
    request: dict[str, Any] = {
        "model": "m",
        "input": QUESTION,
        "tools": [RESPONSES_WEATHER, RESPONSES_TIME],
        "tool_choice": choice,
    }

    if stream:
        events = list(client.responses.create(**request, stream=True))
        done = events[-1]
        assert done.type == "response.completed"
        response = done.response
    else:
        response = client.responses.create(**request)

    assert response.status == "completed"
    assert [(item.type, getattr(item, "name", None)) for item in response.output] == [
        ("function_call", "get_weather")
    ]
    [upstream] = primary.requests
    assert offered(upstream) == {"get_weather", "local_time"}
    assert (upstream.body or {})["tool_choice"] == sent


# --- provider kinds: Anthropic's and Ollama's forms ---------------------------------------


@pytest.mark.parametrize(
    ("choice", "sent"),
    [("required", {"type": "any"}), (NAMED, {"type": "tool", "name": "get_weather"})],
)
def test_anthropic_gets_its_own_form_of_a_forced_choice(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, choice: Any, sent: Any
) -> None:
    settings = make_settings(
        agent_models={"m": ["anthropic:claude-test"]},
        anthropic_base_url=primary.anthropic_base_url,
        provider_max_retries=0,
    )
    client = sdk(serve(settings))
    primary.script(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "t1")]))

    answer = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=choice,
    )

    assert answer.choices[0].finish_reason == "tool_calls"
    [request] = primary.requests
    assert request.path == "/v1/messages"
    assert offered(request) == {"get_weather", "local_time"}
    assert (request.body or {})["tool_choice"] == sent


@pytest.mark.parametrize(
    ("choice", "tools"), [("required", {"get_weather", "local_time"}), (NAMED, {"get_weather"})]
)
def test_ollama_without_tool_choice_is_offered_only_what_it_must_call(
    make_settings: SettingsFactory,
    serve: Serve,
    ollama: FakeOllama,
    choice: Any,
    tools: set[str],
) -> None:
    settings = make_settings(
        agent_models={"m": ["ollama:llama3.1"]},
        ollama_base_url=ollama.base_url,
        provider_max_retries=0,
    )
    client = sdk(serve(settings))
    ollama.script(OllamaReply("", tool_calls=[("get_weather", {"city": "Oslo"})]))

    answer = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=choice,
    )

    assert answer.choices[0].finish_reason == "tool_calls"
    [request] = ollama.requests
    assert offered(request) == tools
    assert "tool_choice" not in request
