"""The Responses door's `item_reference` items, `reasoning` and `text.verbosity`.

The Vercel AI SDK sends earlier turns as references to the items it was given; the Agents
SDK, langchain and pydantic-ai send `reasoning` and `text.verbosity`. Driven with the openai
SDK (and pydantic-ai's `OpenAIResponsesModel`) over a real uvicorn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseInputMessageItem,
    ResponseInputParam,
    ResponseItemList,
    ResponseOutputMessage,
)
from openai.types.responses.response_input_param import ItemReference

from graph.errors import ErrorCode
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec

Serve = Callable[[Settings], ServedApp]
Sdk = Callable[..., openai.OpenAI]

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
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


def text(content: Any) -> Any:
    """A message's content as a string: text parts joined (None stays None)."""
    if isinstance(content, list):
        return "".join(part["text"] for part in content)
    return content


def ref(item_id: str) -> ItemReference:
    return {"type": "item_reference", "id": item_id}


def test_references_to_earlier_input_and_output_items_are_the_conversation(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings())
    client = sdk(app.url)
    first = client.responses.create(model="offline", input="echo apricot")
    asked = client.responses.input_items.list(first.id).data[0]
    answered = first.output[0]
    assert isinstance(asked, ResponseInputMessageItem)
    assert isinstance(answered, ResponseOutputMessage)
    assert (asked.id.startswith("msg_"), answered.id.startswith("msg_")) == (True, True)

    # The Vercel AI SDK's second turn: no previous_response_id, earlier items by reference.
    history: ResponseInputParam = [
        ref(asked.id),
        ref(answered.id),
        {"role": "user", "content": "What did I say?"},
    ]
    second = client.responses.create(model="offline", input=history)
    assert second.output_text == 'Earlier you said: "echo apricot"'

    # The new response lists the items themselves, and they can be referenced again.
    page = httpx.get(f"{app.url}/v1/responses/{second.id}/input_items?order=asc").json()
    ResponseItemList.model_validate(page, strict=True)
    listed = page["data"]
    assert [item["id"] for item in listed[:2]] == [asked.id, answered.id]
    assert listed[1]["role"] == "assistant"
    assert listed[1]["content"][0]["text"] == "apricot"
    third = client.responses.create(
        model="offline",
        input=[ref(asked.id), ref(listed[2]["id"]), {"role": "user", "content": "echo fig"}],
    )
    assert third.output_text == "fig"


def test_a_referenced_function_call_reaches_the_model_as_the_call_it_was(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, sdk: Sdk
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)).url)
    primary.script(
        Reply("", tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]),
        Reply("It is sunny in Oslo."),
    )
    first = client.responses.create(model="m", input="Weather in Oslo?", tools=[WEATHER])
    call = first.output[-1]
    assert call.type == "function_call"
    asked = client.responses.input_items.list(first.id).data[0]
    final = client.responses.create(
        model="m",
        input=[
            ref(asked.id),
            ref(call.id or ""),
            {"type": "function_call_output", "call_id": "c1", "output": "sunny, 21C"},
        ],
        tools=[WEATHER],
    )
    assert final.output_text == "It is sunny in Oslo."
    sent = [
        (m["role"], text(m.get("content")), [c["id"] for c in m.get("tool_calls") or []])
        for m in (primary.requests[1].body or {})["messages"]
        if m["role"] != "system"
    ]
    assert sent == [
        ("user", "Weather in Oslo?", []),
        ("assistant", None, ["c1"]),
        ("tool", "sunny, 21C", []),
    ]
    assert (primary.requests[1].body or {})["messages"][-2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }


def test_an_unknown_deleted_or_another_keys_item_is_a_400_naming_it(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings(api_keys=["sk-a", "sk-b"]))
    mine = sdk(app.url, "sk-a")
    made = mine.responses.create(model="offline", input="echo secret")
    message = made.output[0]
    assert isinstance(message, ResponseOutputMessage)
    answered = message.id
    other = sdk(app.url, "sk-b")
    for client, item_id in [(other, answered), (mine, "msg_unknown")]:
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(
                model="offline",
                input=[{"role": "user", "content": "hi"}, ref(item_id)],
            )
        error = refused.value.body
        assert isinstance(error, dict)
        assert (error["param"], error["code"]) == ("input[1].id", ErrorCode.ITEM_NOT_FOUND)
        assert item_id in error["message"]
        assert "secret" not in str(error)
    mine.responses.delete(made.id)
    with pytest.raises(openai.BadRequestError):
        mine.responses.create(model="offline", input=[ref(answered)])


def test_a_reference_without_its_type_is_one_too(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings())
    client = sdk(app.url)
    first = client.responses.create(model="offline", input="echo plum")
    asked = client.responses.input_items.list(first.id).data[0]
    body = {
        "model": "offline",
        "input": [
            {"id": asked.id, "type": None},
            {"role": "user", "content": "What did I say?"},
        ],
    }
    answer = httpx.post(f"{app.url}/v1/responses", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    raw = Response.model_validate(answer.json(), strict=True)
    assert raw.output_text == 'Earlier you said: "echo plum"'


def test_reasoning_effort_and_verbosity_reach_the_provider_as_on_the_chat_door(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, sdk: Sdk
) -> None:
    client = sdk(serve(on_fake(make_settings, primary)).url)
    primary.script(Reply("short"), Reply("short"), Reply("plain"))
    answer = client.responses.create(
        model="m",
        input="hi",
        reasoning={"effort": "low", "summary": "auto"},
        text={"verbosity": "low"},
    )
    assert answer.output_text == "short"
    # Echoed as OpenAI echoes them.
    assert answer.reasoning is not None
    assert (answer.reasoning.effort, answer.reasoning.summary) == ("low", "auto")
    assert answer.text is not None
    assert answer.text.verbosity == "low"
    chat = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        reasoning_effort="low",
        verbosity="low",
    )
    assert chat.choices[0].message.content == "short"
    client.responses.create(model="m", input="hi")  # unset: nothing is sent
    sent = [request.body or {} for request in primary.requests]
    assert [(body.get("reasoning_effort"), body.get("verbosity")) for body in sent] == [
        ("low", "low"),
        ("low", "low"),
        (None, None),
    ]


def test_the_offline_model_accepts_reasoning_and_verbosity_and_they_are_echoed(
    make_settings: SettingsFactory, serve: Serve, sdk: Sdk
) -> None:
    app = serve(make_settings())
    body = {
        "model": "offline",
        "input": "echo kiwi",
        "reasoning": {"effort": "high"},
        "text": {"verbosity": "high"},
    }
    answer = httpx.post(f"{app.url}/v1/responses", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    raw = Response.model_validate(answer.json(), strict=True)
    assert raw.output_text == "kiwi"
    assert raw.reasoning is not None
    assert raw.text is not None
    assert (raw.reasoning.effort, raw.text.verbosity) == ("high", "high")
    stored = sdk(app.url).responses.retrieve(raw.id)
    assert stored.reasoning == raw.reasoning


async def test_pydantic_ai_responses_model_holds_a_conversation(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings
    from pydantic_ai.providers.openai import OpenAIProvider

    app = serve(make_settings())
    async with openai.AsyncOpenAI(base_url=f"{app.url}/v1", api_key="unused") as client:
        model = OpenAIResponsesModel("offline", provider=OpenAIProvider(openai_client=client))
        settings = OpenAIResponsesModelSettings(
            openai_reasoning_effort="low",
            openai_text_verbosity="low",
            openai_reasoning_summary="auto",
        )
        agent = Agent(model, model_settings=settings)
        first = await agent.run("echo apricot")
        assert first.output == "apricot"
        second = await agent.run("What did I say?", message_history=first.all_messages())
        assert second.output == 'Earlier you said: "echo apricot"'
