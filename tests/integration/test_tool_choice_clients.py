"""Client libraries that force a tool get a call of their own tool: openai SDK, pydantic-ai.

On the offline model (the embedded default, which must call a forced client tool even for
a text its rules would answer with the server's calculator) and on a scripted upstream
(what pydantic-ai sends: its output tool with `tool_choice: "required"`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.helpers import WEATHER_TOOL

Serve = Callable[[Settings], ServedApp]

ARITHMETIC = "What is 17 * 23?"
"""The offline model's rules answer this with the server's calculator, unless obliged."""


def sdk(app: ServedApp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)


# --- the openai SDK on the offline model -------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_required_calls_the_clients_tool_on_the_offline_model(
    make_settings: SettingsFactory, serve: Serve, stream: bool
) -> None:
    client = sdk(serve(make_settings()))
    request: dict[str, Any] = {
        "model": "offline",
        "messages": [{"role": "user", "content": f"{ARITHMETIC} And the weather in Oslo?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
    }

    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True))
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        names = [d.function.name for d in deltas if d.function and d.function.name]
        arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(**request)
        calls = answer.choices[0].message.tool_calls or []
        names = [c.function.name for c in calls]
        arguments = "".join(c.function.arguments for c in calls)
        finish = answer.choices[0].finish_reason
        text = answer.choices[0].message.content or ""

    assert (names, finish, text) == (["get_weather"], "tool_calls", "")
    assert json.loads(arguments) == {"city": "Oslo"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("choice", ["required", {"type": "function", "name": "get_weather"}])
def test_the_responses_door_calls_the_forced_tool_on_the_offline_model(
    make_settings: SettingsFactory, serve: Serve, stream: bool, choice: Any
) -> None:
    client = sdk(serve(make_settings()))
    request: dict[str, Any] = {
        "model": "offline",
        "input": f"{ARITHMETIC} And the weather in Oslo?",
        "tools": [{"type": "function", **WEATHER_TOOL["function"]}],
        "tool_choice": choice,
    }

    if stream:
        events = list(client.responses.create(**request, stream=True))
        assert events[-1].type == "response.completed"
        response = events[-1].response
    else:
        response = client.responses.create(**request)

    [item] = response.output
    assert item.type == "function_call"
    assert (item.name, json.loads(item.arguments)) == ("get_weather", {"city": "Oslo"})


# --- pydantic-ai: structured output through its output tool -------------------------------


class Product(BaseModel):
    """The product of two numbers."""

    expression: str
    value: int


class Population(BaseModel):
    """How many people live in a city."""

    city: str
    population: int


Models = Callable[[str, ServedApp, str], OpenAIChatModel | OpenAIResponsesModel]


@pytest.fixture
async def models() -> AsyncIterator[Models]:
    """pydantic-ai models (`chat` or `responses` API) of a service; their clients closed after."""
    clients: list[openai.AsyncOpenAI] = []

    def model(api: str, app: ServedApp, name: str) -> OpenAIChatModel | OpenAIResponsesModel:
        client = openai.AsyncOpenAI(base_url=f"{app.url}/v1", api_key="k", max_retries=0)
        clients.append(client)
        provider = OpenAIProvider(openai_client=client)
        if api == "chat":
            return OpenAIChatModel(name, provider=provider)
        return OpenAIResponsesModel(name, provider=provider)

    yield model
    for client in clients:
        await client.close()


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_pydantic_ai_gets_its_structured_output_from_the_offline_model(
    make_settings: SettingsFactory, serve: Serve, models: Models, api: str
) -> None:
    app = serve(make_settings())
    agent = Agent(models(api, app, "offline"), output_type=Product, retries=0)

    result = await agent.run(ARITHMETIC)
    async with agent.run_stream(ARITHMETIC) as streamed:
        output = await streamed.get_output()

    assert isinstance(result.output, Product)
    assert isinstance(output, Product)
    [response] = [m for m in result.all_messages() if isinstance(m, ModelResponse)]
    assert [p.tool_name for p in response.parts if isinstance(p, ToolCallPart)] == ["final_result"]


async def test_pydantic_ai_output_after_its_own_function_tool_on_the_offline_model(
    make_settings: SettingsFactory, serve: Serve, models: Models
) -> None:
    app = serve(make_settings())
    agent = Agent(models("chat", app, "offline"), output_type=Population, retries=0)
    looked_up: list[str] = []

    @agent.tool_plain
    def population_of(city: str) -> int:
        """How many people live in a city."""
        looked_up.append(city)
        return 545_000

    result = await agent.run("How many people live in Lisbon?")

    called = [
        part.tool_name
        for message in result.all_messages()
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]
    # Its function tool first (the best match of the question), then, obliged to call a tool
    # still, the output tool with what the result and the question say.
    assert called == ["population_of", "final_result"]
    assert looked_up == ["Lisbon"]
    assert result.output == Population(city="Lisbon", population=545_000)


async def test_pydantic_ai_sends_its_output_tool_as_required_and_only_that_is_offered(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, models: Models
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-test"]},
            openai_base_url=primary.openai_base_url,
            provider_max_retries=0,
        )
    )
    primary.script(
        Reply(tool_calls=[ToolCallSpec("final_result", {"expression": "17 * 23", "value": 391})])
    )
    agent = Agent(models("chat", app, "m"), output_type=Product, retries=0)

    result = await agent.run(ARITHMETIC)

    assert result.output == Product(expression="17 * 23", value=391)
    [request] = primary.requests
    body = request.body or {}
    assert body["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in body["tools"]] == ["final_result"]
