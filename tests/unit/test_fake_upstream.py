"""Self-tests of the fake LLM upstream, driven only by real clients over real HTTP.

They pin down both that the fake speaks the OpenAI / Anthropic wire protocols well
enough for the official SDKs and the LangChain chat models, and which exception each
injected fault surfaces as in those clients.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.exceptions import ContextOverflowError, ModelRateLimitError
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI
from openai.types.chat import (
    ChatCompletionContentPartImageParam,
    ChatCompletionMessageFunctionToolCall,
)
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.fakes.server_thread import ServedApp, free_port
from tests.fakes.upstream import FakeUpstream, Fault, RecordedRequest, Reply, ToolCallSpec

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
ANTHROPIC_MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
def upstream(primary: FakeUpstream) -> FakeUpstream:
    """The shared fake provider of tests/conftest.py, reset for this test."""
    return primary


@pytest.fixture
def oai(upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=upstream.openai_base_url, api_key="test", max_retries=0, timeout=5.0
    ) as client:
        yield client


@pytest.fixture
def ant(upstream: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=upstream.anthropic_base_url, api_key="test", max_retries=0, timeout=5.0
    ) as client:
        yield client


@asynccontextmanager
async def async_oai(upstream: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=upstream.openai_base_url, api_key="test", max_retries=0, timeout=5.0
    ) as client:
        yield client


def only_request(upstream: FakeUpstream) -> RecordedRequest:
    requests = upstream.requests
    assert len(requests) == 1, requests
    return requests[0]


# ----------------------------------------------------------------- OpenAI: success


def test_openai_text(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Reply("Sunny and mild."))

    completion = oai.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-test"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Sunny and mild."
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 3)
    assert completion.usage.total_tokens == 12
    request = only_request(upstream)
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test"
    assert request.body is not None
    assert request.body["messages"] == MESSAGES
    assert not request.stream


def test_openai_default_reply_usage_and_model_overrides(
    upstream: FakeUpstream, oai: openai.OpenAI
) -> None:
    upstream.script(Reply("x", usage=(100, 7), model="gpt-4o-2024", finish_reason="length"))

    first = oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    second = oai.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert first.model == "gpt-4o-2024"
    assert first.choices[0].finish_reason == "length"
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (100, 7)
    assert second.choices[0].message.content == "ok"  # the default step
    upstream.default = Reply("fallback")
    assert oai.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == (
        "fallback"
    )
    assert len(upstream.requests) == 3
    assert upstream.pending == 0


def test_openai_wire_format_raw(upstream: FakeUpstream) -> None:
    upstream.script(Reply(tool_calls=[ToolCallSpec("get_weather", WEATHER_ARGS, id="call_1")]))

    response = httpx.post(
        f"{upstream.openai_base_url}/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
    )

    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert body["system_fingerprint"] is None
    assert isinstance(body["created"], int)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)},
        }
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_stream_raw_sse_framing(upstream: FakeUpstream) -> None:
    upstream.script(Reply("one two"))
    request = {"model": "m", "messages": MESSAGES, "stream": True}

    with httpx.stream("POST", f"{upstream.openai_base_url}/chat/completions", json=request) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()

    events = raw.split("\n\n")
    assert events[-1] == ""  # every event ends with a blank line
    assert all(event.startswith("data: ") for event in events[:-1])
    assert events[-2] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert "usage" not in chunks[0]  # only present when include_usage was requested
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


async def test_openai_stream_text_with_usage(upstream: FakeUpstream) -> None:
    text = "The weather in Paris is sunny."
    upstream.script(Reply(text))

    async with async_oai(upstream) as client:
        stream = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) > 3
    assert "".join(deltas) == text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())
    assert only_request(upstream).stream


def test_openai_tool_calls(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(
        Reply(
            "Let me check.",
            tool_calls=[
                ToolCallSpec("get_weather", WEATHER_ARGS, id="call_weather"),
                ToolCallSpec("get_weather", {"city": "Rome", "unit": "celsius"}),
            ],
        )
    )

    completion = oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, tools=[WEATHER_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 2
    first, second = calls
    assert isinstance(first, ChatCompletionMessageFunctionToolCall)
    assert isinstance(second, ChatCompletionMessageFunctionToolCall)
    assert first.type == "function"
    assert first.id == "call_weather"
    assert second.id.startswith("call_")
    assert first.function.name == "get_weather"
    assert json.loads(first.function.arguments) == WEATHER_ARGS
    assert json.loads(second.function.arguments)["city"] == "Rome"


async def test_openai_stream_tool_calls_accumulate(upstream: FakeUpstream) -> None:
    upstream.script(
        Reply(
            tool_calls=[
                ToolCallSpec("get_weather", WEATHER_ARGS),
                ToolCallSpec("get_weather", {"city": "Oslo", "unit": "celsius"}),
            ]
        )
    )

    async with (
        async_oai(upstream) as client,
        client.chat.completions.stream(
            model="gpt-test", messages=MESSAGES, tools=[WEATHER_TOOL]
        ) as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_completion()

    arg_deltas = [e for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert len(arg_deltas) >= 4  # the arguments JSON arrives in fragments
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [(e.index, e.name, e.parsed_arguments) for e in done] == [
        (0, "get_weather", WEATHER_ARGS),
        (1, "get_weather", {"city": "Oslo", "unit": "celsius"}),
    ]
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert message.tool_calls is not None
    assert message.tool_calls[0].id.startswith("call_")
    assert message.tool_calls[0].function.parsed_arguments == WEATHER_ARGS


def test_openai_models_list(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.server_error())  # listing models does not consume steps

    models = oai.models.list()

    assert [model.id for model in models] == ["fake-model"]
    assert upstream.pending == 1
    assert only_request(upstream).method == "GET"


def test_unknown_path_is_recorded_and_404(upstream: FakeUpstream) -> None:
    response = httpx.post(f"{upstream.url}/v1/v1/messages", json={"a": 1})

    assert response.status_code == 404
    assert only_request(upstream).path == "/v1/v1/messages"


# ------------------------------------------------------------------ OpenAI: faults


def test_openai_rate_limit(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.rate_limit(retry_after=1))

    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="m", messages=MESSAGES)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"
    assert only_request(upstream).body is not None  # recorded before the fault was served


def test_openai_server_error_and_custom_status(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(
        Fault.server_error(),
        Fault.status(503, retry_after=2.5, message="busy", error_type="overloaded", error_code="x"),
    )

    with pytest.raises(openai.InternalServerError) as first:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.InternalServerError) as second:
        oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)

    assert first.value.status_code == 500
    assert first.value.type == "server_error"
    assert second.value.status_code == 503
    assert second.value.response.headers["retry-after"] == "2.5"
    assert (second.value.message, second.value.type, second.value.code) == (
        "Error code: 503 - busy",
        "overloaded",
        "x",
    )


def test_openai_context_length(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.context_length())

    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="m", messages=MESSAGES)

    assert caught.value.code == "context_length_exceeded"
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == "messages"
    assert "maximum context length is 128000 tokens" in caught.value.message


def test_openai_hang_times_out(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.hang(10))
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        oai.chat.completions.create(model="m", messages=MESSAGES, timeout=0.3)

    assert time.monotonic() - started < 2
    assert only_request(upstream).path == "/v1/chat/completions"


def test_openai_hang_then_late_reply(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.hang(0.2))

    completion = oai.chat.completions.create(model="m", messages=MESSAGES, timeout=5)

    assert completion.choices[0].message.content == "late"


def test_openai_connection_refused() -> None:
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="test", max_retries=0, timeout=2
    )

    with client, pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES)

    assert type(caught.value) is openai.APIConnectionError  # not APITimeoutError
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


def test_openai_malformed_json(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.malformed_json(), Fault.malformed_json())

    # The SDK does not wrap JSON errors: the raw stdlib exception escapes.
    with pytest.raises(json.JSONDecodeError):
        oai.chat.completions.create(model="m", messages=MESSAGES)
    stream = oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(json.JSONDecodeError):
        next(iter(stream))


def test_openai_cut_stream(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.cut_stream("never gets to the end", after_chunks=2))
    received: list[str | None] = []

    stream = oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError) as caught:
        received.extend(chunk.choices[0].delta.content for chunk in stream)

    assert received == ["", "never", " gets"]  # role chunk, then two text chunks
    assert type(caught.value) is openai.APIConnectionError
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


def test_openai_cut_without_stream(upstream: FakeUpstream, oai: openai.OpenAI) -> None:
    upstream.script(Fault.cut_stream("x", after_chunks=0))

    with pytest.raises(openai.APIConnectionError) as caught:
        oai.chat.completions.create(model="m", messages=MESSAGES)

    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)


# -------------------------------------------------------------------------- Anthropic


def test_anthropic_text(upstream: FakeUpstream, ant: anthropic.Anthropic) -> None:
    upstream.script(Reply("Sunny."))

    message = ant.messages.create(
        model="claude-test", max_tokens=100, system="Be terse.", messages=ANTHROPIC_MESSAGES
    )

    assert message.id.startswith("msg_")
    assert message.model == "claude-test"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Sunny."
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (8, 1)
    request = only_request(upstream)
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == "Bearer test"  # anthropic 2.x: not x-api-key
    assert "anthropic-version" in request.headers


async def test_anthropic_stream_text(upstream: FakeUpstream) -> None:
    text = "It is sunny in Paris today."
    upstream.script(Reply(text))

    async with (
        anthropic.AsyncAnthropic(
            base_url=upstream.anthropic_base_url, api_key="test", max_retries=0, timeout=5
        ) as client,
        client.messages.stream(
            model="claude-test", max_tokens=100, messages=ANTHROPIC_MESSAGES
        ) as stream,
    ):
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()

    assert len(pieces) > 3
    assert "".join(pieces) == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(text.split())
    assert only_request(upstream).stream


def test_anthropic_tool_use(upstream: FakeUpstream, ant: anthropic.Anthropic) -> None:
    upstream.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", WEATHER_ARGS, id="toolu_1")]),
        Reply("Checking.", tool_calls=[ToolCallSpec("get_weather", WEATHER_ARGS)]),
    )

    message = ant.messages.create(model="claude-test", max_tokens=100, messages=ANTHROPIC_MESSAGES)
    with ant.messages.stream(
        model="claude-test", max_tokens=100, messages=ANTHROPIC_MESSAGES
    ) as stream:
        event_types = [event.type for event in stream]
        streamed = stream.get_final_message()

    assert message.stop_reason == "tool_use"
    assert len(message.content) == 1
    block = message.content[0]
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("toolu_1", "get_weather", WEATHER_ARGS)
    assert event_types.count("input_json") >= 2  # partial_json arrives in fragments
    assert streamed.stop_reason == "tool_use"
    assert [b.type for b in streamed.content] == ["text", "tool_use"]
    tool = streamed.content[1]
    assert tool.type == "tool_use"
    assert tool.id.startswith("toolu_")
    assert tool.input == WEATHER_ARGS


def test_anthropic_rate_limit(upstream: FakeUpstream, ant: anthropic.Anthropic) -> None:
    upstream.script(Fault.rate_limit(retry_after=3))

    with pytest.raises(anthropic.RateLimitError) as caught:
        ant.messages.create(model="claude-test", max_tokens=10, messages=ANTHROPIC_MESSAGES)

    assert caught.value.response.headers["retry-after"] == "3"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert body["request_id"].startswith("req_")


def test_anthropic_context_length(upstream: FakeUpstream, ant: anthropic.Anthropic) -> None:
    upstream.script(Fault.context_length(limit=200000, requested=208310))

    with pytest.raises(anthropic.BadRequestError) as caught:
        ant.messages.create(model="claude-test", max_tokens=10, messages=ANTHROPIC_MESSAGES)

    assert "prompt is too long: 208310 tokens > 200000 maximum" in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "invalid_request_error"


def test_a_prompt_over_the_window_is_refused_in_each_providers_shape(
    upstream: FakeUpstream, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    upstream.max_prompt_tokens = 8  # MESSAGES has 9 words
    upstream.script(Reply("never sent"))

    with pytest.raises(openai.BadRequestError) as too_long:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert too_long.value.code == "context_length_exceeded"
    assert "your messages resulted in 9 tokens" in too_long.value.message
    with pytest.raises(anthropic.BadRequestError) as refused:
        ant.messages.create(
            model="claude-test", max_tokens=10, system="Be very terse.", messages=ANTHROPIC_MESSAGES
        )
    assert "prompt is too long: 9 tokens > 8 maximum" in refused.value.message
    assert upstream.pending == 1  # a refusal consumes no step

    short = oai.chat.completions.create(model="m", messages=MESSAGES[1:])
    assert short.choices[0].message.content == "never sent"
    upstream.reset()
    assert upstream.max_prompt_tokens is None


def test_a_responder_answers_by_what_a_request_asks(
    upstream: FakeUpstream, oai: openai.OpenAI
) -> None:
    def by_question(request: RecordedRequest) -> Reply | None:
        text = str((request.body or {})["messages"][-1]["content"])
        return Reply(f"you said {text}") if text.startswith("echo") else None

    upstream.responder = by_question
    upstream.script(Reply("scripted"))

    def ask(text: str) -> str | None:
        reply = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
        return reply.choices[0].message.content

    assert ask("echo one") == "you said echo one"
    assert ask("something else") == "scripted"
    assert ask("more") == "ok"


def test_anthropic_cut_stream_is_not_wrapped(
    upstream: FakeUpstream, ant: anthropic.Anthropic
) -> None:
    upstream.script(Fault.cut_stream("one two three", after_chunks=1))
    seen: list[str] = []

    stream = ant.messages.create(
        model="claude-test", max_tokens=10, messages=ANTHROPIC_MESSAGES, stream=True
    )
    # Unlike the openai SDK, the anthropic SDK lets the transport error escape raw.
    with pytest.raises(httpx2.RemoteProtocolError):
        seen.extend(event.type for event in stream)

    assert seen == ["message_start", "content_block_start", "content_block_delta"]


# -------------------------------------------------------------------------- LangChain

# ChatOpenAI and ChatAnthropic cache their default async httpx client per
# (base_url, timeout) for the whole process. A pooled connection is bound to the event
# loop that opened it, so with per-test loops the second test against the same base
# URL fails with "RuntimeError: Event loop is closed". These tests share one loop.
langchain_loop = pytest.mark.asyncio(loop_scope="module")


@langchain_loop
async def test_langchain_chat_openai(upstream: FakeUpstream) -> None:
    upstream.script(Reply("Hello there."), Reply("Streaming works fine"))
    model = ChatOpenAI(
        base_url=upstream.openai_base_url, api_key="test", model="gpt-test", max_retries=0
    )

    message = await model.ainvoke("hi")
    chunks = [chunk async for chunk in model.astream("hi")]

    assert message.content == "Hello there."
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 2
    assert "".join(str(chunk.content) for chunk in chunks) == "Streaming works fine"
    assert len([chunk for chunk in chunks if chunk.content]) == 3
    first, second = upstream.requests
    assert first.body is not None
    assert first.body["messages"] == [{"content": "hi", "role": "user"}]
    assert second.stream


@langchain_loop
async def test_langchain_chat_openai_tool_calls_stream(upstream: FakeUpstream) -> None:
    upstream.script(Reply(tool_calls=[ToolCallSpec("get_weather", WEATHER_ARGS, id="call_9")]))
    model = ChatOpenAI(
        base_url=upstream.openai_base_url, api_key="test", model="gpt-test", max_retries=0
    ).bind_tools([WEATHER_TOOL])

    merged: AIMessageChunk | None = None
    async for chunk in model.astream("weather?"):
        assert isinstance(chunk, AIMessageChunk)
        merged = chunk if merged is None else merged + chunk

    assert merged is not None
    assert merged.tool_calls == [
        {"name": "get_weather", "args": WEATHER_ARGS, "id": "call_9", "type": "tool_call"}
    ]


@langchain_loop
async def test_langchain_chat_anthropic(upstream: FakeUpstream) -> None:
    upstream.script(Reply("Bonjour."), Reply("Streamed from Claude"))
    model = ChatAnthropic(
        base_url=upstream.anthropic_base_url, api_key="test", model="claude-test", max_retries=0
    )

    message = await model.ainvoke("hi")
    chunks = [chunk async for chunk in model.astream("hi")]

    assert message.content == "Bonjour."
    assert message.response_metadata["stop_reason"] == "end_turn"
    assert "".join(str(chunk.content) for chunk in chunks) == "Streamed from Claude"
    assert all(request.path == "/v1/messages" for request in upstream.requests)


@langchain_loop
async def test_langchain_error_classes(upstream: FakeUpstream) -> None:
    upstream.script(Fault.rate_limit(), Fault.context_length(), Fault.context_length())
    openai_model = ChatOpenAI(
        base_url=upstream.openai_base_url, api_key="test", model="gpt-test", max_retries=0
    )
    anthropic_model = ChatAnthropic(
        base_url=upstream.anthropic_base_url, api_key="test", model="claude-test", max_retries=0
    )

    with pytest.raises(openai.RateLimitError) as limited:
        await openai_model.ainvoke("hi")
    with pytest.raises(openai.BadRequestError) as too_long:
        await openai_model.ainvoke("hi")
    with pytest.raises(ContextOverflowError):
        await anthropic_model.ainvoke("hi")

    assert isinstance(limited.value, ModelRateLimitError)
    # langchain-openai 1.7 looks for "context_length_exceeded" in str(error), but
    # openai 3.x only puts error.message there: OpenAI's real overflow error is NOT
    # classified as ContextOverflowError. Check `.code` instead.
    assert not isinstance(too_long.value, ContextOverflowError)
    assert too_long.value.code == "context_length_exceeded"


# ---------------------------------------------------------------- disconnects & server


async def test_disconnect_counted_when_client_abandons_slow_stream(
    upstream: FakeUpstream,
) -> None:
    upstream.script(Reply("a b c d e f", chunk_delay=0.2), Reply("a b c", chunk_delay=0.01))
    request = {"model": "m", "messages": MESSAGES, "stream": True}
    url = f"{upstream.openai_base_url}/chat/completions"

    async with httpx.AsyncClient(timeout=5) as client:
        async with client.stream("POST", url, json=request) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    break  # got the first chunk; leave with the rest unsent
        assert upstream.wait_for_disconnects(1, timeout=2)

        complete = await client.post(url, json=request)  # fully read: not a disconnect

    assert complete.text.endswith("data: [DONE]\n\n")
    assert upstream.disconnects == 1


async def test_disconnect_counted_when_client_abandons_a_hang(upstream: FakeUpstream) -> None:
    upstream.script(Fault.hang(30))
    request = {"model": "m", "messages": MESSAGES}
    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{upstream.openai_base_url}/chat/completions", json=request)
    assert upstream.wait_for_disconnects(1, timeout=5)
    assert upstream.disconnects == 1


def test_stop_does_not_wait_for_hung_requests() -> None:
    server = FakeUpstream().start()
    server.script(Fault.hang(60))
    errors: list[httpx.HTTPError] = []

    def call() -> None:
        try:
            httpx.post(f"{server.openai_base_url}/chat/completions", json={}, timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    caller.join(5)

    assert time.monotonic() - started < 2
    assert not caller.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], httpx.RemoteProtocolError)


def test_served_app_runs_lifespan_and_stops() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)], lifespan=lifespan)
    with ServedApp(app) as served:
        assert served.url == f"http://127.0.0.1:{served.port}"
        assert events == ["startup"]
        assert httpx.get(served.url).text == "hello"
    assert events == ["startup", "shutdown"]
    assert not served.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.url)


def test_served_app_reports_failed_startup() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("boom")
        yield

    served = ServedApp(Starlette(lifespan=lifespan))

    with pytest.raises(RuntimeError, match="exited during startup"):
        served.start()
    assert not served.running


def test_an_upstream_that_keeps_no_requests_still_answers_them() -> None:
    with FakeUpstream(keep_requests=False, http="httptools") as upstream:
        upstream.default = Reply("not recorded")
        client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="k", max_retries=0)
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content == "not recorded"
        assert upstream.requests == []


def test_rejects_images_refuses_only_requests_with_an_image(upstream: FakeUpstream) -> None:
    upstream.rejects_images = True
    upstream.script(Reply("text answer"))
    client = openai.OpenAI(base_url=upstream.openai_base_url, api_key="k", max_retries=0)
    image: ChatCompletionContentPartImageParam = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA"},
    }
    with pytest.raises(openai.BadRequestError, match="does not support image input"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": [image]}])
    answer = client.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content == "text answer"  # the image consumed no step
    upstream.reset()
    assert not upstream.rejects_images
