"""Client libraries of issue 20 against the served app: the Agents SDK, LiteLLM, Node SDKs.

The OpenAI Agents SDK (`output_type`, its own tool forced with `tool_choice="required"`,
reasoning and verbosity settings) on both of its model classes; LiteLLM's SDK
(`completion` plain, streamed, with a forced tool and a JSON schema, `text_completion`,
`responses`); the Vercel AI SDK and the openai Node SDK, run by node from the pinned project
in tests/clients/node/ (`npm ci` once per session). On the offline model, and on the fake
upstream `primary` where what the model got is the point.

Nothing leaves the machine: the Agents SDK's tracing (an exporter to api.openai.com) is
disabled, LiteLLM is kept offline (below), and the AI SDK's telemetry is off by default.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Literal

# LiteLLM fetches its model cost map from raw.githubusercontent.com when imported (retrying
# in a background thread), and tokenizers when it counts: read before `import litellm`, these
# make it use its bundled copies, so that nothing leaves the machine.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"
# The Agents SDK exports traces to api.openai.com unless told not to (read at import too).
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

import litellm
import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.items import ToolCallItem, ToolCallOutputItem
from litellm.types.llms.openai import ResponsesAPIResponse
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from openai.types.shared import Reasoning
from pydantic import BaseModel, Field

from server.settings import Settings
from tests.conftest import SettingsFactory, service_missing
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.helpers import WEATHER_TOOL

set_tracing_disabled(True)
litellm.telemetry = False  # gone from recent releases; harmless where it still exists

pytestmark = pytest.mark.filterwarnings(
    # LiteLLM's github_copilot module, imported lazily by every `completion`, declares ReadOnly
    # TypedDict items, which pydantic warns about (not ours, and harmless to these tests).
    "ignore:Items? .*ReadOnly. qualifier:UserWarning"
)

Serve = Callable[[Settings], ServedApp]
Api = Literal["chat", "responses"]

ARITHMETIC = "What is 17 * 23?"
"""The offline model computes this (391), and answers it with the server's calculator."""
FORCED = f"{ARITHMETIC} And the weather in Oslo?"
"""What the offline model's rules answer with the server's tool, unless a client tool is forced."""

NODE_PROJECT = Path(__file__).resolve().parents[1] / "clients" / "node"


class Product(BaseModel):
    """The product of two numbers."""

    expression: str
    value: int


class Calculation(BaseModel):
    """What a calculation gives, with an enum and a bounded list (strict mode's hard parts)."""

    expression: str
    value: float
    confidence: Literal["low", "high"]
    steps: list[str] = Field(min_length=1)


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
    )


# --- the OpenAI Agents SDK -----------------------------------------------------------------

AgentsModel = Callable[[Api, ServedApp, str], OpenAIChatCompletionsModel | OpenAIResponsesModel]


@pytest.fixture(scope="module", autouse=True)
def _libraries_clients_collected() -> Iterator[None]:
    """Collect what the libraries leave open, before the next module runs.

    LiteLLM and the Agents SDK keep HTTP clients of their own (LiteLLM caches one per
    endpoint) that nothing here can close; left to the cyclic collector, their sockets were
    reported unclosed (`ResourceWarning`, an error in this suite) in whatever test of another
    module ran when it came by. They are the libraries' sockets to loopback, collected here.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
async def agents_model() -> AsyncIterator[AgentsModel]:
    """Agents SDK models (Chat Completions or Responses) of a service; clients closed after."""
    clients: list[openai.AsyncOpenAI] = []

    def model(
        api: Api, app: ServedApp, name: str
    ) -> OpenAIChatCompletionsModel | OpenAIResponsesModel:
        client = openai.AsyncOpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
        clients.append(client)
        if api == "chat":
            return OpenAIChatCompletionsModel(model=name, openai_client=client)
        return OpenAIResponsesModel(model=name, openai_client=client)

    yield model
    for client in clients:
        await client.close()


def weather_tool(looked_up: list[str]) -> Any:
    """The agent's own function tool (a client tool to the service); records each city."""

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        looked_up.append(city)
        return f"Sunny in {city}, 21 C"

    return get_weather


LOW = ModelSettings(reasoning=Reasoning(effort="low"), verbosity="low")


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_agents_sdk_output_type_on_the_offline_model(
    make_settings: SettingsFactory, serve: Serve, agents_model: AgentsModel, api: Api
) -> None:
    app = serve(make_settings())
    agent = Agent(
        name="calculator",
        instructions="Compute what is asked.",
        model=agents_model(api, app, "offline"),
        output_type=Calculation,
        model_settings=LOW,
    )

    result = await Runner.run(agent, ARITHMETIC)

    assert isinstance(result.final_output, Calculation)
    assert result.final_output.value == 391
    assert result.final_output.confidence in ("low", "high")
    assert result.final_output.steps


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_agents_sdk_runs_its_own_tool_forced_with_required_then_answers(
    make_settings: SettingsFactory, serve: Serve, agents_model: AgentsModel, api: Api
) -> None:
    app = serve(make_settings())
    looked_up: list[str] = []
    agent = Agent(
        name="weather",
        model=agents_model(api, app, "offline"),
        tools=[weather_tool(looked_up)],
        model_settings=ModelSettings(tool_choice="required"),
    )

    result = await Runner.run(agent, FORCED)

    # Its own tool, not the server's calculator: the SDK ran it, then (its tool_choice reset
    # to auto after a call, its default) the model answered from the result.
    assert looked_up == ["Oslo"]
    assert [type(item) for item in result.new_items][:2] == [ToolCallItem, ToolCallOutputItem]
    assert "Sunny in Oslo" in result.final_output


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_agents_sdk_settings_and_forced_tool_reach_the_model(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    agents_model: AgentsModel,
    api: Api,
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"})]), Reply("Sunny.")
    )
    looked_up: list[str] = []
    agent = Agent(
        name="weather",
        model=agents_model(api, app, "m"),
        tools=[weather_tool(looked_up)],
        model_settings=ModelSettings(
            tool_choice="required", reasoning=Reasoning(effort="low"), verbosity="low"
        ),
    )

    result = await Runner.run(agent, FORCED)

    assert (result.final_output, looked_up) == ("Sunny.", ["Oslo"])
    first, then = (request.body or {} for request in primary.requests)
    # Only the client's tool is offered, with `required`; the server's calculator is not.
    assert first["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_weather"]
    assert then.get("tool_choice") != "required"
    for body in (first, then):
        assert (body.get("reasoning_effort"), body.get("verbosity")) == ("low", "low")


# --- LiteLLM's SDK -------------------------------------------------------------------------


def litellm_target(app: ServedApp) -> dict[str, str]:
    """LiteLLM's arguments for the service: its OpenAI provider at the service's /v1."""
    return {"model": "openai/offline", "api_base": f"{app.url}/v1", "api_key": "unused"}


def test_litellm_completion_plain_and_streamed(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    target = litellm_target(serve(make_settings()))
    messages = [{"role": "user", "content": "echo apricot"}]

    answer = litellm.completion(messages=messages, **target)
    chunks = list(litellm.completion(messages=messages, stream=True, **target))

    assert answer.choices[0].message.content == "apricot"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "apricot"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_litellm_completion_calls_the_forced_client_tool(
    make_settings: SettingsFactory, serve: Serve, stream: bool
) -> None:
    target = litellm_target(serve(make_settings()))
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": FORCED}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        **target,
    }

    if stream:
        chunks = list(litellm.completion(stream=True, **request))
        deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
        names = [d.function.name for d in deltas if d.function.name]
        arguments = "".join(d.function.arguments or "" for d in deltas)
        finish = [c.choices[0].finish_reason for c in chunks][-1]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
    else:
        message = (answer := litellm.completion(**request)).choices[0].message
        names = [call.function.name for call in message.tool_calls or []]
        arguments = "".join(call.function.arguments for call in message.tool_calls or [])
        finish = answer.choices[0].finish_reason
        text = message.content or ""

    assert (names, finish, text) == (["get_weather"], "tool_calls", "")
    assert json.loads(arguments) == {"city": "Oslo"}


def test_litellm_completion_json_schema_on_the_offline_model(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    target = litellm_target(serve(make_settings()))
    schema = {**Calculation.model_json_schema(), "additionalProperties": False}
    schema["required"] = list(schema["properties"])

    answer = litellm.completion(
        messages=[{"role": "user", "content": ARITHMETIC}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "calculation", "schema": schema, "strict": True},
        },
        **target,
    )

    calculation = Calculation.model_validate_json(answer.choices[0].message.content)
    assert calculation.value == 391


def test_litellm_text_completion_on_the_completions_door(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    target = litellm_target(serve(make_settings()))

    answer = litellm.text_completion(prompt="echo apricot", max_tokens=16, **target)

    assert answer.object == "text_completion"
    assert (answer.choices[0].text, answer.choices[0].finish_reason) == ("apricot", "stop")
    assert answer.usage.completion_tokens > 0


def first_text(response: ResponsesAPIResponse) -> str:
    """The text of the first part of a response's first output item, a message."""
    message = response.output[0]
    assert isinstance(message, ResponseOutputMessage)
    part = message.content[0]
    assert isinstance(part, ResponseOutputText)
    return part.text


def test_litellm_responses_holds_a_conversation_with_reasoning_and_verbosity(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    target = litellm_target(serve(make_settings()))

    first = litellm.responses(input="echo apricot", **target)
    assert isinstance(first, ResponsesAPIResponse)
    second = litellm.responses(
        input="What did I say?",
        previous_response_id=first.id,  # LiteLLM's own id, wrapping the service's
        reasoning={"effort": "low"},
        text={"verbosity": "low"},
        **target,
    )

    assert isinstance(second, ResponsesAPIResponse)
    assert first_text(first) == "apricot"
    assert first_text(second) == 'Earlier you said: "echo apricot"'
    assert second.reasoning is not None
    assert second.reasoning["effort"] == "low"
    assert second.text is not None
    assert second.text["verbosity"] == "low"


# --- Node: the Vercel AI SDK and the openai Node SDK ----------------------------------------

NodeRun = Callable[..., Any]


@pytest.fixture(scope="session")
def node_project() -> Path:
    """tests/clients/node/ with its locked packages installed (`npm ci`, once a session)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        missing = OSError(f"{'npm' if npm is None else 'node'} is not on PATH")
        service_missing("Node.js 20+ (node and npm: apt-get install nodejs npm)", missing)
    env = {**os.environ, "npm_config_update_notifier": "false", "NO_UPDATE_NOTIFIER": "1"}
    done = subprocess.run(  # noqa: S603 (a fixed command on the repository's own folder)
        [str(npm), "ci", "--no-audit", "--no-fund"],
        cwd=NODE_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {NODE_PROJECT} failed:\n{done.stderr[-3000:]}")
    return NODE_PROJECT


@pytest.fixture
def run_node(node_project: Path) -> NodeRun:
    """`node SCRIPT CASE URL [ARG]` in the Node project; its stdout's JSON (fails on an error)."""
    node = shutil.which("node")
    assert node is not None

    def run(script: str, case: str, app: ServedApp, *args: str) -> Any:
        done = subprocess.run(  # noqa: S603 (the repository's own scripts)
            [node, script, case, app.url, *args],
            cwd=node_project,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_vercel_generate_text_gets_the_forced_client_tool_call(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun, api: Api
) -> None:
    # With the server's calculator run instead, the SDK throws AI_ToolChoiceViolationError.
    result = run_node("vercel_ai.mjs", "required", serve(make_settings()), api)

    assert result == {
        "finishReason": "tool-calls",
        "calls": [{"name": "get_weather", "input": {"city": "Oslo"}}],
        "text": "",
        "warnings": [],
    }


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_vercel_agent_loop_runs_its_tool_then_calls_its_answer_tool(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun, api: Api
) -> None:
    result = run_node("vercel_ai.mjs", "loop", serve(make_settings()), api)

    assert result["looked"] == ["Oslo"]
    assert result["steps"] == [["get_weather"], ["answer"]]
    [answer] = result["final"]
    assert "Sunny in Oslo, 21 C" in answer["input"]["text"]
    assert result["secondRequest"]["tool_choice"] == "required"


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_vercel_generate_object_validates_against_its_zod_schema(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun, api: Api
) -> None:
    result = run_node("vercel_ai.mjs", "object", serve(make_settings()), api)

    # generateObject throws AI_NoObjectGeneratedError unless the JSON passes the zod schema.
    calculation = Calculation.model_validate(result["object"])
    assert calculation.value == 391
    assert (result["finishReason"], result["warnings"]) == ("stop", [])


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_vercel_stream_text_tool_call_has_no_empty_text_part(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun, api: Api
) -> None:
    result = run_node("vercel_ai.mjs", "stream", serve(make_settings()), api)

    assert result["calls"] == [{"name": "get_weather", "input": {"city": "Oslo"}}]
    assert result["finishReason"] == "tool-calls"
    # A first chunk with `content: ""` (not OpenAI's null) made a text part of nothing.
    assert result["content"] == ["tool-call"]
    assert not [kind for kind in result["types"] if kind.startswith("text")]


def test_vercel_responses_conversation_sends_item_references(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun
) -> None:
    result = run_node("vercel_ai.mjs", "conversation", serve(make_settings()))

    assert result["first"] == "apricot"
    # The earlier answer goes back as a reference to the item the service returned.
    assert {"type": "item_reference", "id": result["firstItem"]} in result["sent"]
    assert result["second"] == 'Earlier you said: "echo apricot"'


def test_openai_node_chat_completions_with_required_tool_choice(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun
) -> None:
    result = run_node("openai_sdk.mjs", "required", serve(make_settings()))

    assert (result["finishReason"], result["content"]) == ("tool_calls", None)
    assert result["calls"] == [["get_weather", {"city": "Oslo"}]]
    streamed = result["streamed"]
    assert (streamed["names"], streamed["finishReason"]) == (["get_weather"], "tool_calls")
    assert json.loads(streamed["arguments"]) == {"city": "Oslo"}
    assert set(streamed["contents"]) == {None}  # OpenAI's null, never ""


def test_openai_node_legacy_completions(
    make_settings: SettingsFactory, serve: Serve, run_node: NodeRun
) -> None:
    result = run_node("openai_sdk.mjs", "completions", serve(make_settings()))

    assert (result["object"], result["text"], result["finishReason"]) == (
        "text_completion",
        "apricot",
        "stop",
    )
    assert result["usage"]["completion_tokens"] > 0
    assert result["streamed"] == "apricot"
