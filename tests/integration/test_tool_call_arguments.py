"""Tool call arguments in a client's history that no JSON decoder or checkpointer takes as is.

A model may write bad arguments, and its client sends them back with every later turn; a 400
would end the conversation for good. So on `/v1/chat/completions` (`messages[].tool_calls`)
and `/v1/responses` (`function_call` items) such arguments are kept as the text they are,
`{"__raw__": text}`, as for any text that is not JSON: the turn is answered and stored, and the
provider gets arguments it can read. Driven by the openai SDK over real HTTP; on `/agent`,
whose messages carry args already parsed, the same holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCallParam

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.helpers import thread_messages

Serve = Callable[[Settings], ServedApp]

NESTED_ARRAYS = "[" * 3000 + "]" * 3000
NESTED_OBJECTS = '{"a":' * 300 + "1" + "}" * 300

KEPT_RAW = {
    "5000 digits": "9" * 5000,  # int(): ValueError beyond 4300 digits
    "not JSON": "{not json",
    "3000 deep": NESTED_ARRAYS,  # the JSON decoder's RecursionError
    "300 deep": NESTED_OBJECTS,  # the checkpointer's encoder gives up near 250
    "beyond 64 bits": '{"n": 18446744073709551616}',  # msgpack takes no larger integer
    "NaN": '{"x": NaN}',
    "overflow": '{"x": 1e400}',
}
"""Arguments kept as the text they are: `{"__raw__": arguments}`."""

KEPT_PARSED = {
    "an array": ("[1, 2]", {"__value__": [1, 2]}),
    "a string": ('"Oslo"', {"__value__": "Oslo"}),
    "an object": ('{"city": "Oslo", "n": 18446744073709551615}', {"city": "Oslo", "n": 2**64 - 1}),
    "a lone surrogate key": ('{"\\ud800": "a"}', {"\ufffd": "a"}),
}
"""Arguments that parse: a value that is not an object is kept under `__value__`."""

CASES = {name: (text, {"__raw__": text}) for name, text in KEPT_RAW.items()} | KEPT_PARSED


@pytest.fixture
def settings(make_settings: SettingsFactory, primary: FakeUpstream) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
    )


@pytest.fixture
def client(settings: Settings, serve: Serve) -> Iterator[openai.OpenAI]:
    app = serve(settings)
    with openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


def arguments_sent_upstream(upstream: FakeUpstream) -> Any:
    """The arguments of the history's tool call, as the provider received them (parsed)."""
    messages = (upstream.requests[-1].body or {})["messages"]
    (call,) = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert call["id"] == "call_1"
    return json.loads(call["function"]["arguments"])


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "thread"])
@pytest.mark.parametrize("case", list(CASES))
async def test_chat_completions_keeps_such_arguments_and_answers(
    settings: Settings, client: openai.OpenAI, primary: FakeUpstream, case: str, stateful: bool
) -> None:
    arguments, kept = CASES[case]
    primary.script(Reply("answered"))
    thread = f"args-{sorted(CASES).index(case)}"

    completion = client.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
            {"role": "user", "content": "and then?"},
        ],
        extra_headers={"X-Thread-Id": thread} if stateful else None,
    )

    assert completion.choices[0].message.content == "answered"
    assert arguments_sent_upstream(primary) == kept
    if stateful:
        stored = await thread_messages(settings, thread)
        calls = [c for m in stored if m.type == "ai" for c in getattr(m, "tool_calls", [])]
        assert [c["args"] for c in calls] == [kept]


@pytest.mark.parametrize("store", [False, True], ids=["stateless", "stored"])
@pytest.mark.parametrize("case", list(CASES))
async def test_responses_keeps_such_arguments_and_answers(
    settings: Settings, client: openai.OpenAI, primary: FakeUpstream, case: str, store: bool
) -> None:
    arguments, kept = CASES[case]
    primary.script(Reply("answered"))

    response = client.responses.create(
        model="m",
        input=[
            {"role": "user", "content": "look it up"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "lookup",
                "arguments": arguments,
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "found"},
            {"role": "user", "content": "and then?"},
        ],
        store=store,
    )

    assert response.output_text == "answered"
    assert arguments_sent_upstream(primary) == kept
    if store:
        stored = await thread_messages(settings, response.id)
        calls = [c for m in stored if m.type == "ai" for c in getattr(m, "tool_calls", [])]
        assert [c["args"] for c in calls] == [kept]
        # The input items list the arguments as the client sent them.
        (listed,) = [
            i for i in client.responses.input_items.list(response.id) if i.type == "function_call"
        ]
        assert listed.arguments == arguments


@pytest.mark.postgres
async def test_on_postgresql_every_such_turn_is_stored_too(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, postgres_url: str
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=primary.openai_base_url,
        provider_max_retries=0,
        database_url=postgres_url,
    )
    app = serve(settings)
    with openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0) as client:
        for index, (arguments, kept) in enumerate(CASES.values()):
            primary.script(Reply("answered"))
            call: ChatCompletionMessageFunctionToolCallParam = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": arguments},
            }
            completion = client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "look it up"},
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "found"},
                    {"role": "user", "content": "and then?"},
                ],
                extra_headers={"X-Thread-Id": f"pg-{index}"},
            )
            assert completion.choices[0].message.content == "answered"
            stored = await thread_messages(settings, f"pg-{index}")
            calls = [c for m in stored if m.type == "ai" for c in getattr(m, "tool_calls", [])]
            assert [c["args"] for c in calls] == [kept]


async def test_the_agent_door_refuses_parsed_args_no_encoder_can_write_back(
    settings: Settings, serve: Serve, primary: FakeUpstream
) -> None:
    """On `/agent` the args arrive parsed: an integer beyond 64 bits is in the body itself,
    which the sanitiser refuses before anything runs or is stored (`server.edge.json_scan`); as
    text in `function.arguments` on `/v1` it is kept as `__raw__` (the tests above)."""
    app = serve(settings)
    primary.script(Reply("answered"))
    history = [
        {"type": "human", "content": "look it up"},
        {
            "type": "ai",
            "content": "",
            "tool_calls": [{"name": "lookup", "args": {"n": 2**64}, "id": "call_1"}],
        },
        {"type": "tool", "content": "found", "tool_call_id": "call_1"},
        {"type": "human", "content": "and then?"},
    ]
    config = {"configurable": {"thread_id": "agent-args", "model": "m"}}

    # httpx, not RemoteRunnable: its encoder (orjson) refuses an integer beyond 64 bits.
    response = httpx.post(
        f"{app.url}/agent/invoke", json={"input": {"messages": history}, "config": config}
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"
    assert "64 bits" in response.json()["error"]["message"]
    assert primary.requests == []
    assert await thread_messages(settings, "agent-args") == []
