"""The Responses door as the openai SDK uses it: `client.responses` over a real uvicorn.

Every object is checked against the SDK's own pydantic types in strict mode (the raw JSON,
not the SDK's lenient parse), every stream event against `ResponseStreamEvent`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseFunctionToolCall,
    ResponseInputMessageItem,
    ResponseInputParam,
    ResponseInputText,
    ResponseItem,
    ResponseItemList,
    ResponseOutputMessage,
    ResponseStreamEvent,
)
from pydantic import TypeAdapter

from graph.errors import ErrorCode
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.service_process import ServiceProcess
from tests.fakes.upstream import FakeUpstream, Fault, Reply, ToolCallSpec

Serve = Callable[[Settings], ServedApp]
Spawn = Callable[[Settings], ServiceProcess]

EVENT = TypeAdapter(ResponseStreamEvent)

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": None,
}


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: Any) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
        **extra,
    )


Sdk = Callable[..., openai.OpenAI]


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    """openai SDK clients for a service's URL (and a key), closed after the test."""
    made: list[openai.OpenAI] = []

    def client(url: str, key: str = "unused") -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30))
        return made[-1]

    yield client
    for each in made:
        each.close()


def create(url: str, key: str | None = None, **body: Any) -> dict[str, Any]:
    """`POST /v1/responses` with httpx: the raw JSON, validated strictly by the SDK's type."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.post(f"{url}/v1/responses", json=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    raw: dict[str, Any] = answer.json()
    Response.model_validate(raw, strict=True)
    return raw


def raw_events(url: str, **body: Any) -> list[dict[str, Any]]:
    """A streamed response's events, each validated strictly as a typed SDK event."""
    with httpx.stream(
        "POST", f"{url}/v1/responses", json={**body, "stream": True}, timeout=30
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in answer.iter_lines() if line]
    names = [line[len("event: ") :] for line in lines if line.startswith("event: ")]
    events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert names == [event["type"] for event in events]
    for event in events:
        EVENT.validate_python(event, strict=True)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


def text_of(raw: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in raw["output"]
        if item["type"] == "message"
        for part in item["content"]
    )


TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def squeezed(types: list[str]) -> list[str]:
    """Event types with runs of deltas counted once."""
    out: list[str] = []
    for kind in types:
        if not (out and out[-1] == kind and kind.endswith(".delta")):
            out.append(kind)
    return out


# --- create, on the offline model --------------------------------------------------------


def test_a_string_input_answers_with_a_message_and_usage(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings())
    raw = create(app.url, model="offline", input="What is 17 * 23?", metadata={"k": "v"})
    assert raw["id"].startswith("resp_")
    assert (raw["object"], raw["status"], raw["model"]) == ("response", "completed", "offline")
    assert "391" in text_of(raw)
    assert raw["metadata"] == {"k": "v"}
    usage = raw["usage"]
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    parsed = sdk(app.url).responses.create(model="offline", input="echo kiwi")
    assert parsed.output_text == "kiwi"
    assert isinstance(parsed.output[0], ResponseOutputMessage)


def test_items_input_is_a_conversation(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    raw = create(
        app.url,
        model="offline",
        input=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "input_text", "text": "echo apricot"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "apricot", "annotations": []}],
            },
            {"type": "message", "role": "user", "content": "What did I say before?"},
        ],
    )
    assert text_of(raw) == 'Earlier you said: "echo apricot"'


def test_previous_response_id_continues_and_an_older_one_forks(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    client = sdk(serve(make_settings()).url)
    first = client.responses.create(model="offline", input="echo pineapple")
    second = client.responses.create(
        model="offline", input="echo mango", previous_response_id=first.id
    )
    recall = client.responses.create(
        model="offline", input="what did I say?", previous_response_id=second.id
    )
    assert recall.output_text == 'Earlier you said: "echo pineapple"; "echo mango"'
    assert recall.previous_response_id == second.id
    # From the first response again: the thread forks there, without mango.
    fork = client.responses.create(
        model="offline", input="what did I say?", previous_response_id=first.id
    )
    assert fork.output_text == 'Earlier you said: "echo pineapple"'
    # The branch that went on is still there.
    again = client.responses.create(
        model="offline", input="what did I say?", previous_response_id=recall.id
    )
    assert again.output_text == (
        'Earlier you said: "echo pineapple"; "echo mango"; "what did I say?"'
    )


def test_instructions_apply_to_their_turn_only(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, sdk: Sdk
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)).url)
    primary.script(Reply("Arr."), Reply("Hello."))
    first = client.responses.create(model="m", input="hi", instructions="Talk like a pirate.")
    assert first.instructions == "Talk like a pirate."
    client.responses.create(model="m", input="hi again", previous_response_id=first.id)
    systems = [
        [m["content"] for m in (r.body or {})["messages"] if m["role"] == "system"]
        for r in primary.requests
    ]
    assert systems[0] == ["Talk like a pirate."]
    assert systems[1]
    assert "Talk like a pirate." not in systems[1]
    sent = [(m["role"], m["content"]) for m in (primary.requests[1].body or {})["messages"]]
    assert [m for m in sent if m[0] != "system"] == [
        ("user", "hi"),
        ("assistant", "Arr."),
        ("user", "hi again"),
    ]


def test_sampling_fields_reach_the_provider(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, sdk: Sdk
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)).url)
    primary.script(Reply("{}"))
    answer = client.responses.create(
        model="m",
        input="json please",
        temperature=0.3,
        top_p=0.9,
        max_output_tokens=50,
        text={"format": {"type": "json_object"}},
    )
    assert (answer.temperature, answer.top_p, answer.max_output_tokens) == (0.3, 0.9, 50)
    sent = primary.requests[0].body or {}
    assert (sent["temperature"], sent["top_p"]) == (0.3, 0.9)
    assert 50 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert sent["response_format"] == {"type": "json_object"}


# --- function tools: the client's, paused and resumed ----------------------------------------


def test_a_function_tool_call_is_answered_by_function_call_output(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, sdk: Sdk
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)).url)
    primary.script(
        Reply("Let me look.", tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply("It is sunny in Oslo."),
    )
    first = client.responses.create(model="m", input="Weather in Oslo?", tools=[WEATHER])
    assert first.status == "completed"
    assert [item.type for item in first.output] == ["message", "function_call"]
    call = first.output[1]
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "c1",
        "get_weather",
        {"city": "Oslo"},
    )
    assert len(primary.requests) == 1  # the server never ran the client's tool

    final = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "c1", "output": "sunny, 21C"}],
        tools=[WEATHER],
    )
    assert final.output_text == "It is sunny in Oslo."
    sent = primary.requests[1].body or {}
    assert [(m["tool_call_id"], m["content"]) for m in sent["messages"] if m["role"] == "tool"] == [
        ("c1", "sunny, 21C")
    ]
    calls = [m for m in sent["messages"] if m["role"] == "assistant" and m.get("tool_calls")]
    assert [c["tool_calls"][0]["id"] for c in calls] == ["c1"]  # resumed, not re-seeded
    items = client.responses.input_items.list(final.id)
    assert [item.type for item in items.data] == ["function_call_output"]


def test_wrong_call_ids_are_a_400(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}, "c9")]))
    first = create(app.url, model="m", input="Rome?", tools=[WEATHER])
    answer = httpx.post(
        f"{app.url}/v1/responses",
        json={
            "model": "m",
            "previous_response_id": first["id"],
            "input": [{"type": "function_call_output", "call_id": "nope", "output": "28C"}],
        },
    )
    assert answer.status_code == 400
    assert "c9" in answer.json()["error"]["message"]


def test_a_paused_response_must_be_answered_and_a_finished_one_cannot_be(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}, "c9")]), Reply("fig")
    )
    paused = create(app.url, model="m", input="Rome?", tools=[WEATHER])
    ignored = httpx.post(
        f"{app.url}/v1/responses",
        json={"model": "m", "previous_response_id": paused["id"], "input": "never mind"},
    )
    assert ignored.status_code == 400
    assert ignored.json()["error"]["param"] == "input"
    finished = create(app.url, model="m", input="fig?")
    stray = httpx.post(
        f"{app.url}/v1/responses",
        json={
            "model": "m",
            "previous_response_id": finished["id"],
            "input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}],
        },
    )
    assert stray.status_code == 400
    assert len(primary.requests) == 2  # neither refused request reached the model


def test_items_sent_with_previous_response_id_are_appended_as_they_are(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    """A client that resends the previous output beside previous_response_id loses nothing."""
    client = sdk(serve(make_settings()).url)
    first = client.responses.create(model="offline", input="echo plum")
    resent: ResponseInputParam = [
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "what did I say?"},
    ]
    answer = client.responses.create(
        model="offline",
        input=resent,
        previous_response_id=first.id,
    )
    assert answer.output_text == 'Earlier you said: "echo plum"'


def test_a_stateless_round_trip_from_items(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    """A client that keeps the state itself (store false, the whole history as items)."""
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"}, "c2")]), Reply("Warm.")
    )
    first = create(app.url, model="m", input="Rome?", tools=[WEATHER], store=False)
    history = [{"role": "user", "content": "Rome?"}, *first["output"]]
    history.append({"type": "function_call_output", "call_id": "c2", "output": "28C"})
    final = create(app.url, model="m", input=history, tools=[WEATHER], store=False)
    assert text_of(final) == "Warm."
    assert httpx.get(f"{app.url}/v1/responses/{final['id']}").status_code == 404


# --- stored responses ------------------------------------------------------------------------


def first_text(item: ResponseItem) -> str:
    """The text of an input message item's first part."""
    assert isinstance(item, ResponseInputMessageItem)
    part = item.content[0]
    assert isinstance(part, ResponseInputText)
    return part.text


def test_retrieve_input_items_and_delete(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings())
    client = sdk(app.url)
    items: ResponseInputParam = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "echo one"},
        {"role": "user", "content": "echo two"},
    ]
    made = client.responses.create(model="offline", input=items, metadata={"n": "1"})
    got = client.responses.retrieve(made.id)
    assert got.model_dump() == made.model_dump()
    raw = httpx.get(f"{app.url}/v1/responses/{made.id}").json()
    Response.model_validate(raw, strict=True)

    page = httpx.get(f"{app.url}/v1/responses/{made.id}/input_items", params={"limit": 2}).json()
    ResponseItemList.model_validate(page, strict=True)
    assert page["has_more"] is True
    listed = list(client.responses.input_items.list(made.id, limit=1))  # pages through
    assert [item.type for item in listed] == ["message"] * 3
    texts = [first_text(item) for item in listed]
    assert texts == ["echo two", "echo one", "Be terse."]  # newest first
    ascending = client.responses.input_items.list(made.id, order="asc")
    assert [first_text(item) for item in ascending.data] == texts[::-1]

    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(made.id)
    assert isinstance(gone.value.body, dict)
    assert gone.value.body["code"] == ErrorCode.RESPONSE_NOT_FOUND
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="offline", input="hi", previous_response_id=made.id)


def test_store_false_is_stateless_and_never_retrievable(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    client = sdk(serve(make_settings()).url)
    kept = client.responses.create(model="offline", input="echo pear")
    loose = client.responses.create(
        model="offline", input="what did I say?", previous_response_id=kept.id, store=False
    )
    assert loose.output_text == 'Earlier you said: "echo pear"'  # it read the stored thread
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(loose.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="offline", input="x", previous_response_id=loose.id)
    # ... and it wrote nothing to the thread it read.
    after = client.responses.create(
        model="offline", input="what did I say?", previous_response_id=kept.id
    )
    assert after.output_text == 'Earlier you said: "echo pear"'


def test_another_keys_response_is_a_404(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings(api_keys=["sk-a", "sk-b"]))
    mine = sdk(app.url, "sk-a").responses.create(model="offline", input="echo secret")
    other = sdk(app.url, "sk-b")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="offline", input="what?", previous_response_id=mine.id)
    assert sdk(app.url, "sk-a").responses.retrieve(mine.id).output_text == "secret"
    with pytest.raises(openai.AuthenticationError):
        sdk(app.url, "sk-wrong").responses.retrieve(mine.id)


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"background": True}, "background", ErrorCode.UNSUPPORTED_PARAMETER),
        ({"conversation": "conv_1"}, "conversation", ErrorCode.UNSUPPORTED_PARAMETER),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", ErrorCode.UNSUPPORTED_PARAMETER),
        ({"include": ["reasoning.encrypted_content"]}, "include", ErrorCode.UNSUPPORTED_PARAMETER),
        ({"max_tool_calls": 3}, "max_tool_calls", ErrorCode.UNSUPPORTED_PARAMETER),
        ({"top_logprobs": 2}, "top_logprobs", ErrorCode.UNSUPPORTED_PARAMETER),
        ({"n": 2}, "n", ErrorCode.UNKNOWN_PARAMETER),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", ErrorCode.UNSUPPORTED_VALUE),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "file_search"}},
            "tool_choice.type",
            ErrorCode.UNSUPPORTED_VALUE,
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "other"}},
            "tool_choice.name",
            ErrorCode.INVALID_REQUEST,
        ),
        (
            {"text": {"format": {"type": "grammar"}}},
            "text.format.type",
            ErrorCode.UNSUPPORTED_VALUE,
        ),
        (
            {"input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0].id",
            ErrorCode.ITEM_NOT_FOUND,
        ),
        ({"input": [{"type": "computer_call_output"}]}, "input[0]", ErrorCode.INVALID_REQUEST),
        ({"reasoning": {"effort": "maximal"}}, "reasoning.effort", ErrorCode.INVALID_REQUEST),
        ({"text": {"verbosity": "loud"}}, "text.verbosity", ErrorCode.INVALID_REQUEST),
        ({"input": [], "model": "offline"}, "input", ErrorCode.INVALID_REQUEST),
        ({"stream": "yes"}, "stream", ErrorCode.INVALID_REQUEST),
        ({"model": "nope"}, "model", ErrorCode.MODEL_NOT_FOUND),
    ],
)
def test_what_cannot_be_honoured_is_a_clear_error(
    make_settings: SettingsFactory,
    serve: Serve,
    extra: dict[str, Any],
    param: str,
    code: ErrorCode,
) -> None:
    app = serve(make_settings())
    body = {"model": "offline", "input": "hi", **extra}
    answer = httpx.post(f"{app.url}/v1/responses", json=body)
    assert answer.status_code == (404 if code is ErrorCode.MODEL_NOT_FOUND else 400), answer.text
    error = answer.json()["error"]
    assert (error["param"], error["code"]) == (param, code.value)


def test_unknown_ids_are_404_in_openai_shape(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    for method, path in [
        ("GET", "/v1/responses/resp_nope"),
        ("DELETE", "/v1/responses/resp_nope"),
        ("GET", "/v1/responses/resp_nope/input_items"),
    ]:
        answer = httpx.request(method, f"{app.url}{path}")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "response_not_found"
    answer = httpx.post(
        f"{app.url}/v1/responses",
        json={"model": "offline", "input": "hi", "previous_response_id": "resp_nope"},
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found_error"


# --- streaming ---------------------------------------------------------------------------


def test_stream_helper_and_raw_events_follow_openais_sequence(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings())
    client = sdk(app.url)
    first = client.responses.create(model="offline", input="echo pineapple")
    with client.responses.stream(
        model="offline", input="what did I say?", previous_response_id=first.id
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert squeezed([e.type for e in events]) == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == 'Earlier you said: "echo pineapple"'
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text
    assert final.usage is not None
    assert final.usage.output_tokens > 0
    # The streamed response is stored as it ended, and continues like any other.
    assert client.responses.retrieve(final.id).output_text == final.output_text

    raw = raw_events(app.url, model="offline", input="What is 6 * 7?")
    assert squeezed([e["type"] for e in raw]) == TEXT_EVENTS
    item_ids = {e["item_id"] for e in raw if "item_id" in e}
    assert item_ids == {raw[-1]["response"]["output"][0]["id"]}
    assert raw[0]["response"]["status"] == "in_progress"
    assert "42" in text_of(raw[-1]["response"])


def test_create_stream_true_streams_text_and_function_calls(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, sdk: Sdk
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply("Let me look.", tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply("Sunny."),
    )
    events = list(
        sdk(app.url).responses.create(
            model="m",
            input="Oslo?",
            tools=[WEATHER],
            stream=True,
        )
    )
    classes = {type(e).__name__ for e in events}
    assert all(name.startswith("Response") and name.endswith("Event") for name in classes)
    assert squeezed([e.type for e in events]) == [
        *TEXT_EVENTS[:-1],
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-1]
    assert done.type == "response.completed"
    call = done.response.output[1]
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.call_id == "c1"
    resumed = raw_events(
        app.url,
        model="m",
        previous_response_id=done.response.id,
        input=[{"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
    )
    assert text_of(resumed[-1]["response"]) == "Sunny."


def test_a_provider_failing_mid_stream_is_response_failed(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Fault.cut_stream("the answer is forty two", after_chunks=2))
    events = raw_events(app.url, model="m", input="hi")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created"
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"
    assert failed["error"]["message"]
    assert httpx.get(f"{app.url}/v1/responses/{failed['id']}").status_code == 404


def test_a_failure_before_any_event_is_an_http_error(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Fault.server_error())
    answer = httpx.post(
        f"{app.url}/v1/responses", json={"model": "m", "input": "hi", "stream": True}
    )
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "all_providers_failed"


# --- restarts ------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_tool_using_conversation_survives_kill_9(
    make_settings: SettingsFactory,
    serve_process: Spawn,
    primary: FakeUpstream,
    request: pytest.FixtureRequest,
    store: str,
    sdk: Sdk,
) -> None:
    extra: dict[str, Any] = {}
    if store == "postgres":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    settings = on_fake(make_settings, primary, **extra)
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply("Sunny in Oslo."),
        Reply("You asked about Oslo."),
    )
    service = serve_process(settings)
    first = sdk(service.url).responses.create(model="m", input="Oslo?", tools=[WEATHER])
    service.kill()

    service = serve_process(settings)
    client = sdk(service.url)
    assert client.responses.retrieve(first.id).output[0].type == "function_call"
    answered = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
        tools=[WEATHER],
    )
    assert answered.output_text == "Sunny in Oslo."
    service.kill()

    service = serve_process(settings)
    last = sdk(service.url).responses.create(
        model="m", input="What did I ask?", previous_response_id=answered.id
    )
    assert last.output_text == "You asked about Oslo."
    sent = [
        (m["role"], m.get("content") or m.get("tool_calls", [{}])[0].get("id"))
        for m in (primary.requests[-1].body or {})["messages"]
        if m["role"] != "system"
    ]
    assert sent == [
        ("user", "Oslo?"),
        ("assistant", "c1"),
        ("tool", "sunny"),
        ("assistant", "Sunny in Oslo."),
        ("user", "What did I ask?"),
    ]


# --- one run per thread, disconnects -------------------------------------------------------


def test_two_continuations_of_one_thread_at_once_one_gets_409(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("first"), Reply("slow answer " * 5, chunk_delay=0.1), Reply("after"))
    base = create(app.url, model="m", input="a")
    results: dict[str, int] = {}

    def slow() -> None:
        body = {"model": "m", "input": "b", "stream": True, "previous_response_id": base["id"]}
        with httpx.stream("POST", f"{app.url}/v1/responses", json=body, timeout=30) as answer:
            answer.read()
            results["slow"] = answer.status_code

    worker = threading.Thread(target=slow)
    worker.start()
    while len(primary.requests) < 2:
        threading.Event().wait(0.01)  # polling the fake's record: no event to wait on
    second = httpx.post(
        f"{app.url}/v1/responses",
        json={"model": "m", "input": "c", "previous_response_id": base["id"]},
    )
    worker.join()
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "thread_busy"
    assert results["slow"] == 200
    after = create(app.url, model="m", input="c", previous_response_id=base["id"])
    assert text_of(after) == "after"


async def test_a_client_that_leaves_mid_stream_cancels_the_run(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply(" ".join(f"w{i}" for i in range(50)), chunk_delay=0.05), Reply("fine"))
    async with (
        httpx.AsyncClient(base_url=app.url) as client,
        client.stream(
            "POST", "/v1/responses", json={"model": "m", "input": "go", "stream": True}
        ) as response,
    ):
        rid = ""
        async for line in response.aiter_lines():
            if line.startswith("data: ") and not rid:
                rid = json.loads(line[len("data: ") :])["response"]["id"]
            if "response.output_text.delta" in line:
                break
    assert await asyncio.to_thread(primary.wait_for_disconnects, 1, 5.0)
    # The run was cancelled before it ended: nothing was recorded, and the service goes on.
    assert httpx.get(f"{app.url}/v1/responses/{rid}").status_code == 404
    assert text_of(create(app.url, model="m", input="again")) == "fine"


# --- reasoning ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_is_a_reasoning_item_before_the_message(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, stream: bool
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("Six.", reasoning="Two threes make six."))
    if stream:
        events = raw_events(app.url, model="m", input="2*3?")
        assert squeezed([e["type"] for e in events]) == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
            *TEXT_EVENTS[2:],
        ]
        added = [e for e in events if e["type"] == "response.output_item.added"]
        assert [(e["output_index"], e["item"]["type"]) for e in added] == [
            (0, "reasoning"),
            (1, "message"),
        ]
        reasoning = "".join(
            e["delta"] for e in events if e["type"] == "response.reasoning_text.delta"
        )
        assert reasoning == "Two threes make six."
        raw = events[-1]["response"]
    else:
        raw = create(app.url, model="m", input="2*3?")
    assert [item["type"] for item in raw["output"]] == ["reasoning", "message"]
    assert raw["output"][0]["content"] == [
        {"type": "reasoning_text", "text": "Two threes make six."}
    ]
    assert text_of(raw) == "Six."


def test_show_reasoning_false_leaves_the_reasoning_item_out(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary, show_reasoning=False))
    primary.script(Reply("Six.", reasoning="Two threes make six."), Reply("Still six."))
    raw = create(app.url, model="m", input="2*3?")
    assert [item["type"] for item in raw["output"]] == ["message"]
    events = raw_events(app.url, model="m", input="again", previous_response_id=raw["id"])
    assert "response.reasoning_text.delta" not in {e["type"] for e in events}


def test_an_answer_cut_at_max_output_tokens_is_incomplete(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply("Once upon a", finish_reason="length"), Reply("Once upon", finish_reason="length")
    )
    raw = create(app.url, model="m", input="A story?", max_output_tokens=3)
    assert raw["status"] == "incomplete"
    assert raw["incomplete_details"] == {"reason": "max_output_tokens"}
    assert raw["output"][0]["status"] == "incomplete"
    events = raw_events(app.url, model="m", input="Again?", max_output_tokens=3)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["status"] == "incomplete"
    # An incomplete response is stored and continues like any other.
    assert httpx.get(f"{app.url}/v1/responses/{raw['id']}").json()["status"] == "incomplete"


def test_openapi_declares_the_responses_routes(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    paths = httpx.get(f"{serve(make_settings()).url}/openapi.json").json()["paths"]
    create_route = paths["/v1/responses"]["post"]
    assert create_route["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResponseObject"
    }
    assert "text/event-stream" in create_route["responses"]["200"]["content"]
    assert "400" in create_route["responses"]
    assert set(paths["/v1/responses/{response_id}"]) == {"get", "delete"}
    assert "get" in paths["/v1/responses/{response_id}/input_items"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"model": "offline", "input": "echo \\ud800 x"}', 200),  # a lone surrogate, repaired
        (b'{"model": "offline", "input": {"role": "user"}}', 400),
        (b'{"model": "offline", "input": "hi", "temperature": NaN}', 400),
        (b'{"model": "offline", "input": [' + b"[" * 300 + b"]" * 300 + b"]}", 400),
        (b'{"model": "offline", "input": "hi"', 400),
        (b'{"model": "offline", "input": [{"role": "user", "content": [{"type": 7}]}]}', 400),
        (b'{"model": "offline", "input": "hi", "tools": [{"type": 5}]}', 400),
    ],
)
def test_hostile_bodies_get_a_4xx_in_openai_shape_never_a_5xx(
    make_settings: SettingsFactory, serve: Serve, raw: bytes, status: int
) -> None:
    app = serve(make_settings())
    answer = httpx.post(
        f"{app.url}/v1/responses", content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    if status == 200:
        Response.model_validate(answer.json(), strict=True)
    else:
        assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_the_thread_is_named_after_the_first_response_and_echoed(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=["sk-a"]))
    headers = {"Authorization": "Bearer sk-a"}
    first = httpx.post(
        f"{app.url}/v1/responses", json={"model": "offline", "input": "hi"}, headers=headers
    )
    rid = first.json()["id"]
    assert first.headers["x-thread-id"] == rid
    later = httpx.post(
        f"{app.url}/v1/responses",
        json={"model": "offline", "input": "hi", "previous_response_id": rid},
        headers=headers,
    )
    assert later.headers["x-thread-id"] == rid  # as the client knows it, not as stored
    history = httpx.get(f"{app.url}/agent/threads/{rid}/history", headers=headers)
    assert history.status_code == 200
    assert len(history.json()["checkpoints"]) >= 2
