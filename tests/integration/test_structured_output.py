"""Structured output on the offline model, asked for by real client libraries over HTTP.

`response_format` (`json_object`, `json_schema`) on the chat door and `text.format` on the
Responses door: the openai SDK's `parse()`, langchain's `with_structured_output`,
pydantic-ai's `NativeOutput`/`PromptedOutput` and the `llm` CLI's `--schema` all get JSON
their schema accepts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import openai
import pytest
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseFormatTextJSONSchemaConfigParam, ResponseInputParam
from pydantic import BaseModel, Field
from pydantic_ai import Agent, NativeOutput, PromptedOutput
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream

Serve = Callable[[Settings], ServedApp]


class Calculation(BaseModel):
    """What a calculation gives: the number and a sentence."""

    expression: str
    result: float
    explanation: str
    confidence: Literal["low", "high"]
    steps: list[str] = Field(min_length=1, max_length=3)
    note: str | None = None


class Person(BaseModel):
    """A person named in the text."""

    name: str
    age: int = Field(ge=0, le=150)


QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is 17 * 23?"}]
RESPONSES_QUESTION: ResponseInputParam = [{"role": "user", "content": "What is 17 * 23?"}]


def sdk(app: ServedApp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)


def test_openai_sdk_parse_on_the_chat_door(make_settings: SettingsFactory, serve: Serve) -> None:
    client = sdk(serve(make_settings()))

    completion = client.chat.completions.parse(
        model="offline", messages=QUESTION, response_format=Calculation
    )

    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    assert parsed.result == 391
    assert "391" in parsed.explanation
    assert completion.choices[0].finish_reason == "stop"


def test_openai_sdk_streams_a_schema_answer(make_settings: SettingsFactory, serve: Serve) -> None:
    client = sdk(serve(make_settings()))

    with client.chat.completions.stream(
        model="offline",
        messages=[{"role": "user", "content": "John Doe is 30 years old."}],
        response_format=Person,
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.parsed == Person(name="John Doe", age=30)

    chunks = client.chat.completions.create(
        model="offline", messages=QUESTION, response_format={"type": "json_object"}, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text)["result"] == 391


def test_openai_sdk_parse_on_the_responses_door(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    client = sdk(serve(make_settings()))

    response = client.responses.parse(
        model="offline", input=RESPONSES_QUESTION, text_format=Calculation
    )

    assert response.output_parsed is not None
    assert response.output_parsed.result == 391

    with client.responses.stream(
        model="offline", input="John Doe is 30 years old.", text_format=Person
    ) as stream:
        streamed = stream.get_final_response()
    assert streamed.output_parsed == Person(name="John Doe", age=30)

    plain_json = client.responses.create(
        model="offline",
        input="Answer in JSON: what is 2 + 2?",
        text={"format": {"type": "json_object"}},
    )
    assert json.loads(plain_json.output_text)["result"] == 4


def test_langchain_with_structured_output(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings())
    model = ChatOpenAI(model="offline", base_url=f"{app.url}/v1", api_key="unused", max_retries=0)

    strict = model.with_structured_output(Calculation, method="json_schema", strict=True)
    answer = strict.invoke("What is 17 * 23?")
    assert isinstance(answer, Calculation)
    assert answer.result == 391

    json_mode = model.with_structured_output(Person, method="json_mode")
    shown = json.dumps(Person.model_json_schema())
    person = json_mode.invoke(
        [
            ("system", f"Answer in JSON matching this schema: {shown}"),
            ("user", "Ann Lee is 41."),
        ]
    )
    assert person == Person(name="Ann Lee", age=41)


@pytest.mark.parametrize("door", ["chat", "responses"])
@pytest.mark.parametrize("mode", [NativeOutput, PromptedOutput])
async def test_pydantic_ai_native_and_prompted_output(
    make_settings: SettingsFactory, serve: Serve, door: str, mode: type[NativeOutput[Calculation]]
) -> None:
    app = serve(make_settings())
    async with openai.AsyncOpenAI(
        base_url=f"{app.url}/v1", api_key="unused", max_retries=0
    ) as client:
        provider = OpenAIProvider(openai_client=client)
        model = (
            OpenAIChatModel("offline", provider=provider)
            if door == "chat"
            else OpenAIResponsesModel("offline", provider=provider)
        )
        agent = Agent(model, output_type=mode(Calculation))

        result = await agent.run("What is 17 * 23?")

    assert result.output.result == 391


def test_llm_cli_schema(make_settings: SettingsFactory, serve: Serve, tmp_path: Path) -> None:
    app = serve(make_settings())
    (tmp_path / "extra-openai-models.yaml").write_text(
        "- model_id: offline\n"
        "  model_name: offline\n"
        f"  api_base: {app.url}/v1\n"
        "  supports_schema: true\n"
    )
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "OPENAI_API_KEY": "unused"}
    llm = Path(sys.executable).with_name("llm")

    done = subprocess.run(  # noqa: S603 - this virtualenv's `llm`, fixed arguments
        [str(llm), "-m", "offline", "--no-log", "--schema", "name, age int", "Bo Ek is 7."],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"name": "Bo Ek", "age": 7}


def test_real_providers_get_the_json_schema(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test"]}, openai_base_url=primary.openai_base_url
    )
    client = sdk(serve(settings))
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }
    text_format: ResponseFormatTextJSONSchemaConfigParam = {
        "type": "json_schema",
        "name": "A",
        "schema": schema,
        "strict": True,
    }

    client.responses.create(model="m", input="x", text={"format": text_format})

    sent = primary.requests[-1].body or {}
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": schema, "strict": True},
    }


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "xml"},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": "object"}},
    ],
    ids=["unknown-type", "no-json_schema", "no-name", "schema-not-an-object"],
)
def test_a_malformed_response_format_is_a_400_naming_it(
    make_settings: SettingsFactory, serve: Serve, response_format: dict[str, object]
) -> None:
    client = sdk(serve(make_settings()))

    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="offline",
            messages=QUESTION,
            response_format=response_format,  # type: ignore[call-overload]  # malformed on purpose
        )

    assert refused.value.param == "response_format"
