"""The /v1 door as real clients use it: openai SDK typed models, client tools, threads."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

from graph.errors import ErrorCode
from server.chat import wire
from server.errors import ErrorResponse
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply, ToolCallSpec
from tests.helpers import SDK_WEATHER_TOOL, WEATHER_TOOL, no_deps, settled_messages, thread_messages

Serve = Callable[[Settings], ServedApp]


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: Any) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        **extra,
    )


def sdk(app: ServedApp, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{app.url}/v1", api_key="unused", max_retries=0, default_headers=headers
    )


def raw_chunks(response: httpx.Response) -> list[dict[str, Any]]:
    """Every `data:` event of an SSE body; `[DONE]` must be the last one."""
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


# --- wire format -------------------------------------------------------------------------


def test_completion_matches_the_sdk_model_with_every_required_field(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("Hello there.", usage=(7, 3)))
    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "unknown": 1},
    )
    assert response.status_code == 200
    body = response.json()
    for field in ("id", "object", "created", "model", "choices", "usage"):
        assert field in body
    choice = body["choices"][0]
    for field in ("index", "message", "finish_reason", "logprobs"):
        assert field in choice
    # Not nullable in OpenAI's schema, and there is nothing to fill it with: left out.
    assert "system_fingerprint" not in body
    parsed = ChatCompletion.model_validate(body)
    assert parsed.object == "chat.completion"
    assert parsed.choices[0].message.content == "Hello there."
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.usage is not None
    assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens) == (7, 3)


def test_stream_chunks_match_the_sdk_model_and_end_with_usage_and_done(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("one two three", usage=(5, 3)))
    with httpx.stream(
        "POST",
        f"{app.url}/v1/chat/completions",
        json={
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "count"}],
        },
    ) as response:
        response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert all("system_fingerprint" not in c for c in raw_chunks(response))
    chunks = [ChatCompletionChunk.model_validate(c) for c in raw_chunks(response)]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


def _normalised(text: str) -> str:
    """The body with its run's id and clock replaced, so it can be compared byte for byte."""
    text = re.sub(r'"id":"chatcmpl-[0-9a-f]{32}"', '"id":"chatcmpl-X"', text)
    return re.sub(r'"created":\d+', '"created":0', text)


def _golden_chunk(choices: str, usage: str = "null") -> str:
    head = '{"id":"chatcmpl-X","object":"chat.completion.chunk","created":0,"model":"m",'
    return f'data: {head}"choices":{choices},"usage":{usage}}}\n\n'


def _golden_delta(delta: str, finish: str = "null") -> str:
    return _golden_chunk(
        f'[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]'
    )


GOLDEN_CALL = (
    '{"id":"c1","type":"function","function":'
    '{"name":"get_weather","arguments":"{\\"city\\": \\"Oslo\\"}"}}'
)
GOLDEN_USAGE = '{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}'


def test_the_wire_is_byte_for_byte_what_clients_have_always_seen(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    """Captured before the wire was typed: key order, nulls vs absent fields, escaping."""
    app = serve(on_fake(make_settings, primary))
    url = f"{app.url}/v1"
    reply = Reply("Let me look.", [ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")], (5, 3))
    primary.script(reply, reply)
    ask = {
        "model": "m",
        "messages": [{"role": "user", "content": "Oslo?"}],
        "tools": [WEATHER_TOOL],
    }
    streamed = httpx.post(
        f"{url}/chat/completions",
        json={**ask, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert _normalised(streamed.text) == "".join(
        [
            _golden_delta('{"role":"assistant","content":""}'),
            _golden_delta('{"content":"Let"}'),
            _golden_delta('{"content":" me"}'),
            _golden_delta('{"content":" look."}'),
            _golden_delta('{"tool_calls":[{"index":0,' + GOLDEN_CALL[1:] + "]}"),
            _golden_delta("{}", '"tool_calls"'),
            _golden_chunk("[]", GOLDEN_USAGE),
            "data: [DONE]\n\n",
        ]
    )
    whole = httpx.post(f"{url}/chat/completions", json=ask)
    assert _normalised(whole.text) == (
        '{"id":"chatcmpl-X","object":"chat.completion","created":0,"model":"m","choices":'
        '[{"index":0,"message":{"role":"assistant","content":"Let me look.","refusal":null,'
        f'"tool_calls":[{GOLDEN_CALL}]}},"logprobs":null,"finish_reason":"tool_calls"}}],'
        f'"usage":{GOLDEN_USAGE}}}'
    )
    missing = httpx.post(f"{url}/chat/completions", json={**ask, "model": "nope"})
    assert missing.text == (
        '{"error":{"message":"The model \'nope\' does not exist. Available models: m.",'
        '"type":"not_found_error","param":"model","code":"model_not_found"}}'
    )
    # owned_by: the alias's first endpoint; context_window: its window (an unknown family's).
    card = '{"id":"m","object":"model","created":0,"owned_by":"openai","context_window":8192}'
    assert _normalised(httpx.get(f"{url}/models").text) == f'{{"object":"list","data":[{card}]}}'
    assert _normalised(httpx.get(f"{url}/models/m").text) == card
    assert httpx.get(f"{url}/models/zz").json()["error"]["code"] == "model_not_found"


def test_openapi_declares_the_wire_the_routes_send(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    doc = httpx.get(f"{app.url}/openapi.json").json()

    def ref(response: dict[str, Any]) -> str:
        return str(response["content"]["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]

    chat = doc["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert ref(chat["200"]) == "ChatCompletion"
    item = chat["200"]["content"]["text/event-stream"]["itemSchema"]
    chunk_schema = item["properties"]["data"]["contentSchema"]
    assert chunk_schema["title"] == "ChatCompletionChunk"
    assert "$ref" not in json.dumps(chunk_schema)  # stands alone inside the document
    errors = {"400", "401", "403", "404", "409", "413", "415", "422", "429", "500", "502", "503"}
    assert set(chat) == {"200"} | errors
    assert {status: ref(chat[status]) for status in errors} == dict.fromkeys(
        errors, "ErrorResponse"
    )
    models = doc["paths"]["/v1/models"]["get"]["responses"]
    assert (ref(models["200"]), ref(models["401"])) == ("ModelList", "ErrorResponse")
    card = doc["paths"]["/v1/models/{model_id}"]["get"]["responses"]
    assert (ref(card["200"]), ref(card["404"])) == ("ModelCard", "ErrorResponse")
    schemas = doc["components"]["schemas"]
    assert set(schemas["ErrorCode"]["enum"]) == {code.value for code in ErrorCode}
    assert schemas["ErrorInfo"]["required"] == ["message", "type", "param", "code"]
    # What the route sends is what it declares (the models refuse undeclared fields).
    primary.script(Reply("Hi.", [ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]))
    ask = {
        "model": "m",
        "messages": [{"role": "user", "content": "Oslo?"}],
        "tools": [WEATHER_TOOL],
    }
    wire.ChatCompletion.model_validate(
        httpx.post(f"{app.url}/v1/chat/completions", json=ask).json()
    )
    wire.ModelList.model_validate(httpx.get(f"{app.url}/v1/models").json())
    missing = httpx.post(f"{app.url}/v1/chat/completions", json={**ask, "model": "nope"})
    assert ErrorResponse.model_validate(missing.json()).error.code is ErrorCode.MODEL_NOT_FOUND


def test_usage_is_the_sum_of_every_model_call_of_the_run(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "6*7"})], usage=(10, 4)),
        Reply("It is 42.", usage=(20, 5)),
    )
    answer = sdk(app).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "6*7?"}]
    )
    assert answer.choices[0].message.content == "It is 42."
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (30, 9)
    assert answer.usage.total_tokens == 39
    sent = primary.requests[1].body or {}
    assert any(m["role"] == "tool" and m["content"] == "42" for m in sent["messages"])


def test_sampling_fields_reach_the_provider(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    sdk(app).chat.completions.create(
        model="m",
        messages=[{"role": "developer", "content": "be terse"}, {"role": "user", "content": "x"}],
        temperature=0.2,
        top_p=0.5,
        max_completion_tokens=33,
        stop=["END"],
        response_format={"type": "json_object"},
        seed=7,
        presence_penalty=0.5,
    )
    sent = primary.requests[-1].body or {}
    assert (sent["seed"], sent["presence_penalty"]) == (7, 0.5)
    assert sent["temperature"] == 0.2
    assert sent["top_p"] == 0.5
    assert 33 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert sent["stop"] == ["END"]
    assert sent["response_format"] == {"type": "json_object"}
    assert any(m["content"] == "be terse" for m in sent["messages"])


# --- errors ------------------------------------------------------------------------------


def test_errors_are_openai_shaped_with_the_right_status(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary, max_request_bytes=4096, max_messages=3))
    client = sdk(app)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="m", messages=[])
    assert bad.value.status_code == 400
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], n=2)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    big = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x" * 10_000}]},
    )
    assert big.status_code == 413
    assert set(big.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": str(i)} for i in range(4)]
        )
    assert too_many.value.code == "too_many_messages"
    invalid = httpx.post(f"{app.url}/v1/chat/completions", json={"model": "m"})
    assert invalid.status_code == 400
    assert "detail" not in invalid.json()
    for broken in (
        {"messages": [{"role": "tool", "content": "no call id"}]},
        {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "not_declared"}},
        },
        {"messages": [{"role": "user", "content": "x"}], "temperature": 3},
    ):
        response = httpx.post(f"{app.url}/v1/chat/completions", json={"model": "m", **broken})
        assert response.status_code == 400, broken
        assert response.json()["error"]["type"] == "invalid_request_error"
    for method, path, status in (("GET", "/v1/embeddings", 404), ("DELETE", "/v1/models", 405)):
        other = httpx.request(method, f"{app.url}{path}")
        assert other.status_code == status
        assert set(other.json()["error"]) == {"message", "type", "param", "code"}
    assert primary.requests == []


# --- client tools ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("stateful", [False, True])
def test_client_tools_round_trip(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    stream: bool,
    stateful: bool,
) -> None:
    app = serve(on_fake(make_settings, primary))
    headers = {"X-Thread-Id": f"tools-{stream}"} if stateful else {}
    client = sdk(app, **headers)
    primary.script(
        Reply("Let me look.", tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply("It is sunny in Oslo."),
    )
    history: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="m", messages=history, tools=[SDK_WEATHER_TOOL], stream=True
            )
        )
        calls = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        assert [(d.index, d.id, d.function.name) for d in calls if d.function] == [
            (0, "c1", "get_weather")
        ]
        arguments = "".join(d.function.arguments or "" for d in calls if d.function)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        answer = client.chat.completions.create(
            model="m", messages=history, tools=[SDK_WEATHER_TOOL]
        )
        message = answer.choices[0].message
        assert message.tool_calls is not None
        call = message.tool_calls[0]
        assert isinstance(call, ChatCompletionMessageFunctionToolCall)
        assert (call.id, call.type, call.function.name) == ("c1", "function", "get_weather")
        arguments = call.function.arguments
        finish = answer.choices[0].finish_reason
    assert json.loads(arguments) == {"city": "Oslo"}
    assert finish == "tool_calls"
    # The tool was never run on the server: the model was asked only once so far.
    assert len(primary.requests) == 1

    history += [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"},
    ]
    final = client.chat.completions.create(model="m", messages=history, tools=[SDK_WEATHER_TOOL])
    assert final.choices[0].message.content == "It is sunny in Oslo."
    assert final.choices[0].finish_reason == "stop"
    sent = primary.requests[1].body or {}
    tool_messages = [m for m in sent["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [("c1", "sunny, 21C")]
    tools_offered = {t["function"]["name"] for t in sent.get("tools", [])}
    assert "get_weather" in tools_offered


async def test_client_tool_pause_resumes_the_same_checkpoint(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_fake(make_settings, primary)
    app = serve(settings)
    client = sdk(app, **{"X-Thread-Id": "resume"})
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}, "c9")]),
        Reply("Warm."),
    )
    first = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Rome?"}], tools=[SDK_WEATHER_TOOL]
    )
    calls = first.choices[0].message.tool_calls
    assert calls is not None
    call = calls[0]
    history: list[Any] = [
        {"role": "user", "content": "Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": "c9", "content": "28C"},
    ]
    client.chat.completions.create(model="m", messages=history, tools=[SDK_WEATHER_TOOL])
    stored = await thread_messages(settings, "resume")
    # One user message, one AI call, one tool result, one answer: resumed, not re-seeded.
    assert [m.type for m in stored] == ["human", "ai", "tool", "ai"]


# --- threads -----------------------------------------------------------------------------


async def test_open_webui_history_edit_and_regenerate_land_on_forks(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_fake(make_settings, primary)
    app = serve(settings)
    webui = {"X-OpenWebUI-Chat-Id": "chat-1"}

    def turn(*messages: tuple[str, str]) -> str:
        response = httpx.post(
            f"{app.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": r, "content": c} for r, c in messages]},
            headers=webui,
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-thread-id"] == "chat-1"
        return str(response.json()["choices"][0]["message"]["content"])

    primary.script(Reply("A1"), Reply("A2"), Reply("A2 again"), Reply("B1"))
    assert turn(("user", "Q1")) == "A1"
    assert turn(("user", "Q1"), ("assistant", "A1"), ("user", "Q2")) == "A2"
    # The model saw only the stored thread once: no duplicated history.
    assert [m["content"] for m in (primary.requests[1].body or {})["messages"][1:]] == [
        "Q1",
        "A1",
        "Q2",
    ]
    # Regenerate: the same history again, without the retry marker.
    assert turn(("user", "Q1"), ("assistant", "A1"), ("user", "Q2")) == "A2 again"
    stored = await thread_messages(settings, "chat-1")
    assert [m.content for m in stored] == ["Q1", "A1", "Q2", "A2 again"]
    # Edit of the first message: a branch carrying only the edited message.
    assert turn(("user", "Q1 edited")) == "B1"
    stored = await thread_messages(settings, "chat-1")
    assert [m.content for m in stored] == ["Q1 edited", "B1"]
    assert [m["content"] for m in (primary.requests[3].body or {})["messages"][1:]] == ["Q1 edited"]

    # Every branch is still in the thread's checkpoint history.
    from graph.builder import build_graph
    from server.stores.checkpointer import open_checkpointer

    seen: set[str] = set()
    async with open_checkpointer(settings) as saver:
        graph = build_graph(no_deps, checkpointer=saver)
        async for snapshot in graph.aget_state_history({"configurable": {"thread_id": "chat-1"}}):
            seen.update(str(m.content) for m in snapshot.values.get("messages", []))
    assert {"A2", "A2 again", "B1", "Q1 edited"} <= seen


async def test_background_tasks_leave_the_thread_untouched(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_fake(make_settings, primary)
    app = serve(settings)
    client = sdk(app, **{"X-OpenWebUI-Chat-Id": "chat-2"})
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Q"}])
    before = await thread_messages(settings, "chat-2")
    primary.script(Reply('{"title": "Q"}'))
    title = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "### Task:\nGenerate a title.\n<chat_history>"}],
        max_tokens=1000,
    )
    assert title.choices[0].message.content == '{"title": "Q"}'
    assert "tools" not in (primary.requests[-1].body or {})
    after = await thread_messages(settings, "chat-2")
    assert [m.id for m in after] == [m.id for m in before]


def test_thread_id_chain_and_namespacing_by_key(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary, api_keys=["sk-a", "sk-b"]))
    primary.script(Reply("noted"), Reply("other key"))
    a = openai.OpenAI(base_url=f"{app.url}/v1", api_key="sk-a", max_retries=0)
    b = openai.OpenAI(base_url=f"{app.url}/v1", api_key="sk-b", max_retries=0)
    raw = a.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "remember 7"}], metadata={"thread_id": "t"}
    )
    assert raw.headers["x-thread-id"] == "t"
    # Key B names the same thread id but gets its own, empty thread.
    b.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hello"}], metadata={"thread_id": "t"}
    )
    sent = primary.requests[-1].body or {}
    assert [m["content"] for m in sent["messages"] if m["role"] != "system"] == ["hello"]


def test_two_concurrent_requests_on_one_thread_one_gets_409(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("slow answer " * 5, chunk_delay=0.1), Reply("after"))
    results: dict[str, int] = {}

    def first() -> None:
        with httpx.stream(
            "POST",
            f"{app.url}/v1/chat/completions",
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a"}]},
            headers={"X-Thread-Id": "busy"},
            timeout=30,
        ) as response:
            response.read()
            results["first"] = response.status_code

    worker = threading.Thread(target=first)
    worker.start()
    while not primary.requests:
        threading.Event().wait(0.01)
    second = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "b"}]},
        headers={"X-Thread-Id": "busy"},
    )
    worker.join()
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "thread_busy"
    assert results["first"] == 200
    # The thread is intact and usable afterwards.
    after = sdk(app, **{"X-Thread-Id": "busy"}).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "c"}]
    )
    assert after.choices[0].message.content == "after"


# --- disconnects and retries --------------------------------------------------------------


async def test_disconnect_mid_stream_cancels_the_run_and_the_upstream_request(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_fake(make_settings, primary)
    app = serve(settings)
    primary.script(Reply(" ".join(f"w{i}" for i in range(50)), chunk_delay=0.05), Reply("fine"))
    async with (
        httpx.AsyncClient(base_url=app.url) as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}]},
            headers={"X-Thread-Id": "gone"},
        ) as response,
    ):
        async for line in response.aiter_lines():
            if '"content":"w' in line:
                break
    assert await asyncio.to_thread(primary.wait_for_disconnects, 1, 5.0)
    stored = await settled_messages(settings, "gone")
    assert [m.type for m in stored] == ["human"]  # no half-written answer
    # max_retries: a 409 while the cancelled run is still closing is retried, as the SDK does.
    retrying = openai.OpenAI(
        base_url=f"{app.url}/v1", api_key="unused", default_headers={"X-Thread-Id": "gone"}
    )
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "go"},
        {"role": "user", "content": "?"},
    ]
    answer = await asyncio.to_thread(retrying.chat.completions.create, model="m", messages=messages)
    assert answer.choices[0].message.content == "fine"


def test_a_retried_post_after_a_finished_run_is_answered_from_the_thread(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "2+3"})]),
        Reply("5."),
    )
    messages: list[Any] = [{"role": "user", "content": "2+3?"}]
    client = sdk(app, **{"X-Thread-Id": "retry"})
    assert (
        client.chat.completions.create(model="m", messages=messages).choices[0].message.content
        == "5."
    )
    calls = len(primary.requests)
    # What the openai SDK sends when it retries a POST whose answer it never received.
    replayed = httpx.post(
        f"{app.url}/v1/chat/completions",
        json={"model": "m", "messages": messages},
        headers={"X-Thread-Id": "retry", "X-Stainless-Retry-Count": "1"},
    )
    assert replayed.json()["choices"][0]["message"]["content"] == "5."
    assert len(primary.requests) == calls  # neither the model nor the tool ran again


async def test_a_retry_after_a_cut_run_finishes_it_without_rerunning_tools(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = on_fake(make_settings, primary)
    app = serve(settings)
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "3*3"}, "k1")]),
        Reply(" ".join(["slow"] * 40), chunk_delay=0.05),
        Reply("9."),
    )
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "3*3?"}]
    body = {"model": "m", "stream": True, "messages": messages}
    async with (
        httpx.AsyncClient(base_url=app.url) as client,
        client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"X-Thread-Id": "cut"}
        ) as response,
    ):
        async for line in response.aiter_lines():
            if "slow" in line:
                break
    assert await asyncio.to_thread(primary.wait_for_disconnects, 1, 5.0)
    # The SDK's own retry: a 409 while the cut run is still closing is retried after 1 s.
    retrying = openai.OpenAI(
        base_url=f"{app.url}/v1",
        api_key="unused",
        max_retries=2,
        default_headers={"X-Thread-Id": "cut"},
    )
    retried = await asyncio.to_thread(
        retrying.chat.completions.create, model="m", messages=messages
    )
    assert retried.choices[0].message.content == "9."
    # Three model calls: the tool call, the cut answer, the finished answer; the last one
    # continues after the single calculator result instead of starting over.
    assert len(primary.requests) == 3
    sent = primary.requests[2].body or {}
    assert [m["role"] for m in sent["messages"] if m["role"] != "system"] == [
        "user",
        "assistant",
        "tool",
    ]


async def test_async_sdk_streams_a_server_tool_answer(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "12*12"})]),
        Reply("144."),
    )
    client = openai.AsyncOpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "12*12?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "144."
    assert chunks[-1].usage is not None
    await client.close()


def test_cors_from_settings(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary, cors_origins=["https://chat.example"]))
    preflight = httpx.options(
        f"{app.url}/v1/chat/completions",
        headers={
            "Origin": "https://chat.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
    other = httpx.get(f"{app.url}/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_progress_is_streamed_as_reasoning_content_when_enabled(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test", "openai-compatible:backup"]},
        openai_base_url=primary.openai_base_url,
        openai_compatible_base_url=secondary.openai_base_url,
        progress_events=True,
        provider_max_retries=0,
    )
    app = serve(settings)
    primary.script(Fault.server_error(), Fault.server_error())
    secondary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "1+1"})]), Reply("2.")
    )
    with httpx.stream(
        "POST",
        f"{app.url}/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "1+1?"}]},
    ) as response:
        response.read()
    deltas = [c["choices"][0]["delta"] for c in raw_chunks(response) if c["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    assert "Route: model" in reasoning
    assert "Provider openai:gpt-test" in reasoning
    assert "trying openai-compatible:backup" in reasoning
    assert "Calling calculator" in reasoning
    assert "Tool calculator: done" in reasoning
    assert "".join(d.get("content") or "" for d in deltas) == "2."
    # Off by default: the same conversation streams no reasoning_content.
    plain = serve(on_fake(make_settings, primary))
    primary.script(Reply("hi"))
    with httpx.stream(
        "POST",
        f"{plain.url}/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ) as response:
        response.read()
    assert "reasoning_content" not in response.text


async def test_disconnect_during_a_non_streamed_answer_cancels_the_run(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Fault.hang(30))
    async with httpx.AsyncClient(base_url=app.url) as client:
        waiting = asyncio.create_task(
            client.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "long"}]},
            )
        )
        # The provider is working on the answer (asked for it whole: nobody streams it).
        for _ in range(200):
            if primary.requests:
                break
            await asyncio.sleep(0.05)
        assert primary.requests
        assert primary.requests[0].stream is False
        waiting.cancel()  # the client gives up: its connection closes
        with pytest.raises(asyncio.CancelledError):
            await waiting
    # Leaving cancels the run, and the run's provider call is closed with it.
    assert await asyncio.to_thread(primary.wait_for_disconnects, 1, 5.0)


def test_an_idempotency_key_makes_a_repeat_an_answer_from_the_thread(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("first answer"), Reply("a regenerated answer"))
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}

    def post(key: str) -> str:
        response = httpx.post(
            f"{app.url}/v1/chat/completions",
            json=body,
            headers={"X-Thread-Id": "idem", "Idempotency-Key": key},
        )
        return str(response.json()["choices"][0]["message"]["content"])

    assert post("k-1") == "first answer"
    assert post("k-1") == "first answer"
    assert len(primary.requests) == 1
    # A new key is a new request: it runs again.
    assert post("k-2") == "a regenerated answer"


async def test_leaving_before_the_first_token_frees_the_thread(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Fault.hang(5), Reply("later"))
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "q"}]
    body = {"model": "m", "stream": True, "messages": messages}
    async with httpx.AsyncClient(base_url=app.url) as client:
        waiting = asyncio.create_task(
            client.post("/v1/chat/completions", json=body, headers={"X-Thread-Id": "early"})
        )
        while not primary.requests:  # the run is waiting for the provider's first token
            await asyncio.sleep(0.01)
        waiting.cancel()  # the client gives up: its connection closes
        with pytest.raises(asyncio.CancelledError):
            await waiting
    retrying = openai.OpenAI(
        base_url=f"{app.url}/v1", api_key="unused", default_headers={"X-Thread-Id": "early"}
    )
    answer = await asyncio.to_thread(retrying.chat.completions.create, model="m", messages=messages)
    assert answer.choices[0].message.content == "later"
    assert len(primary.requests) == 2


def test_the_provider_streams_only_when_the_client_does(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("whole"), Reply("in pieces"))
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="x", max_retries=0)
    messages: Any = [{"role": "user", "content": "q"}]
    whole = client.chat.completions.create(model="m", messages=messages)
    pieces = client.chat.completions.create(model="m", messages=messages, stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert (whole.choices[0].message.content, streamed) == ("whole", "in pieces")
    # One JSON answer costs the provider and the service far less than an event stream.
    assert [r.stream for r in primary.requests] == [False, True]
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 1
