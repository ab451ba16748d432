"""The service out of the box: offline provider, SQLite, real HTTP, the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from nodes.providers.offline import NOT_CONFIGURED
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.helpers import chat_body, thread_messages

Serve = Callable[[Settings], ServedApp]


async def test_arithmetic_is_answered_through_a_real_calculator_call(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings()
    app = serve(settings)

    async with httpx.AsyncClient(base_url=app.url) as client:
        response = await client.post(
            "/v1/chat/completions",
            json=chat_body(("user", "What is 17 * 23?")),
            headers={"X-Thread-Id": "arith"},
        )

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert "391" in body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] > 0
    assert response.headers["x-thread-id"] == "arith"

    stored = await thread_messages(settings, "arith")
    assert [type(m) for m in stored] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    call = stored[1]
    assert isinstance(call, AIMessage)
    assert call.tool_calls[0]["name"] == "calculator"
    assert call.tool_calls[0]["args"] == {"expression": "17 * 23"}
    tool = stored[2]
    assert isinstance(tool, ToolMessage)
    assert tool.content == "391"
    assert tool.status == "success"


def test_openai_sdk_chats_streaming_and_not(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    completion = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": "echo hello there"}]
    )
    assert completion.choices[0].message.content == "hello there"

    stream = client.chat.completions.create(
        model="offline",
        messages=[{"role": "user", "content": "What is (2 + 3) * 4?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "20" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0

    models = client.models.list()
    assert [m.id for m in models.data] == ["offline"]


def test_time_question_uses_the_clock(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    completion = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": "What time is it in Asia/Tokyo?"}]
    )

    content = completion.choices[0].message.content or ""
    assert "+09:00" in content
    assert "Asia/Tokyo" in content


def test_anything_else_says_how_to_configure_a_provider(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    completion = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": "Tell me a story"}]
    )

    content = completion.choices[0].message.content or ""
    assert "no LLM provider is configured" in content
    assert "AGENT_MODELS" in content


def test_errors_are_openai_shaped(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.code == "model_not_found"

    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(model="offline", messages=[])
    assert invalid.value.param == "messages"

    raw = httpx.post(f"{app.url}/v1/chat/completions", json={"model": "offline"})
    assert raw.status_code == 400
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert "detail" not in raw.json()


@pytest.mark.parametrize(
    "expression",
    ["9**9**9", "2**10**10", "(" * 10_000 + "1" + ")" * 10_000, "1+" * 500_000 + "1"],
    ids=["9**9**9", "2**10**10", "10k-parens", "1MB"],
)
def test_hostile_arithmetic_is_refused_and_the_service_keeps_answering(
    make_settings: SettingsFactory, serve: Serve, expression: str
) -> None:
    # Past the guard (MAX_INPUT_CHARS): the calculator's own limits are under test here.
    app = serve(make_settings(max_input_chars=len(expression) + 100))
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0, timeout=30)

    refused = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": f"What is {expression}?"}]
    )
    after = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": "What is 6 * 7?"}]
    )

    assert "calculator tool reported an error" in (refused.choices[0].message.content or "")
    assert "42" in (after.choices[0].message.content or "")


def test_health(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    assert httpx.get(f"{app.url}/health").json() == {"status": "ok"}


def test_a_bad_provider_chain_stops_the_service_at_start(make_settings: SettingsFactory) -> None:
    from server.app import create_app

    served = ServedApp(create_app(make_settings(agent_models={"x": ["nope:model"]})))
    with pytest.raises(RuntimeError, match="exited during startup"):
        served.start()
    served.stop()


def test_an_over_long_thread_id_is_refused(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", "hi")),
        headers={"X-Thread-Id": "t" * 300},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "X-Thread-Id"


def test_api_key_required_when_configured(
    make_settings: SettingsFactory, serve: Callable[[Settings], ServedApp]
) -> None:
    served = serve(make_settings(api_keys=["sk-test-key"]))
    anonymous = openai.OpenAI(base_url=f"{served.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        anonymous.models.list()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    missing = httpx.get(f"{served.url}/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="sk-test-key", max_retries=0)
    assert [m.id for m in client.models.list()] == ["offline"]
    assert httpx.get(f"{served.url}/health").status_code == 200


# --- what a client asks of the model: max_tokens, stop, tool_choice ---------------------

RESERVATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City of the restaurant"},
        "guests": {"type": "integer", "minimum": 1, "maximum": 12},
        "meal": {"type": "string", "enum": ["breakfast", "lunch", "dinner"]},
        "terrace": {"type": "boolean"},
        "budget": {"type": "number", "exclusiveMinimum": 0},
        "notes": {"type": "string"},
    },
    "required": ["city", "guests", "meal", "terrace", "budget"],
    "additionalProperties": False,
}
RESERVATION_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "reserve",
        "description": "Reserve a table at a restaurant",
        "parameters": RESERVATION_SCHEMA,
    },
}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_the_answer_with_finish_reason_length(
    make_settings: SettingsFactory, serve: Serve, field: str
) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me a story"}]
    limit: dict[str, Any] = {field: 6}

    completion = client.chat.completions.create(model="offline", messages=question, **limit)
    stream = client.chat.completions.create(
        model="offline",
        messages=question,
        stream=True,
        stream_options={"include_usage": True},
        **limit,
    )
    chunks = list(stream)

    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == " ".join(NOT_CONFIGURED.split()[:6])
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 6
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert 0 < chunks[-1].usage.completion_tokens <= 6


def test_stop_cuts_the_text_streamed_and_not(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 17 * 23?"}]

    completion = client.chat.completions.create(model="offline", messages=question, stop=" =")
    stream = client.chat.completions.create(
        model="offline", messages=question, stop=["=", "391"], stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert completion.choices[0].message.content == "17 * 23"
    assert completion.choices[0].finish_reason == "stop"
    assert streamed == "17 * 23 "


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
def test_tool_choice_forces_a_client_tool_with_arguments_that_fit_its_schema(
    make_settings: SettingsFactory, serve: Serve, streamed: bool
) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    request: dict[str, Any] = {
        "model": "offline",
        "messages": [{"role": "user", "content": "Hello there"}],
        "tools": [RESERVATION_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "reserve"}},
    }

    if streamed:
        chunks = list(client.chat.completions.create(**request, stream=True))
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        assert [d.function.name for d in deltas if d.function] == ["reserve"]
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        completion = client.chat.completions.create(**request)
        [call] = completion.choices[0].message.tool_calls or []
        assert call.type == "function"
        assert call.function.name == "reserve"
        arguments = call.function.arguments
        finish = completion.choices[0].finish_reason

    assert finish == "tool_calls"
    args = json.loads(arguments)
    schema = RESERVATION_SCHEMA
    assert set(schema["required"]) <= set(args) <= set(schema["properties"])
    assert isinstance(args["city"], str)
    assert isinstance(args["guests"], int)
    assert not isinstance(args["guests"], bool)
    assert 1 <= args["guests"] <= 12
    assert args["meal"] in ("breakfast", "lunch", "dinner")
    assert isinstance(args["terrace"], bool)
    assert isinstance(args["budget"], int | float)
    assert args["budget"] > 0


def test_a_forced_tool_reads_its_arguments_from_the_user_text(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    completion = client.chat.completions.create(
        model="offline",
        messages=[{"role": "user", "content": "Dinner in Lisbon for 3, terrace=yes, 80 euros"}],
        tools=[RESERVATION_TOOL],
        tool_choice="required",
    )

    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert json.loads(call.function.arguments) == {
        "city": "Lisbon",
        "guests": 3,
        "meal": "dinner",
        "terrace": True,
        "budget": 80,
    }


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 17 \u00d7 23?", "17 \u00d7 23 = 391"),
        ("2^10", "2^10 = 1024"),
        ("What is 10 \u00f7 4?", "10 \u00f7 4 = 2.5"),
        ("7 \u2212 2", "7 \u2212 2 = 5"),
    ],
)
def test_arithmetic_as_chat_uis_write_it(
    make_settings: SettingsFactory, serve: Serve, question: str, answer: str
) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    completion = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": question}]
    )

    assert completion.choices[0].message.content == answer
