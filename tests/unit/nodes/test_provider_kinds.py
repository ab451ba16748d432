"""What the built-in provider kinds declare: their URLs, and who takes OpenAI's fields."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from graph.context import Context
from nodes.providers.catalogue import ProviderCatalogue, ProviderTarget
from nodes.providers.registry import ProviderConfig
from tests.factories import make_graph
from tests.fakes.upstream import FakeUpstream, Reply


def built(spec: str, base_url: str | None = None) -> Any:
    target = ProviderTarget.parse(spec)
    key = SecretStr("sk-test")
    configs = {target.kind: ProviderConfig(kind=target.kind, api_key=key, base_url=base_url)}
    catalogue = ProviderCatalogue(aliases={"a": [target]}, default_alias="a", configs=configs)
    return catalogue.chat_model(target)


@pytest.mark.parametrize(
    ("spec", "url"),
    [
        ("openrouter:meta-llama/llama-3.1-8b-instruct", "https://openrouter.ai/api/v1"),
        ("together:meta-llama/Llama-3.3-70B-Instruct-Turbo", "https://api.together.xyz/v1"),
    ],
)
def test_hosted_openai_wire_kinds_default_to_their_own_url(spec: str, url: str) -> None:
    model = built(spec)
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == url
    assert built(spec, "http://127.0.0.1:9/v1").openai_api_base == "http://127.0.0.1:9/v1"


def test_openai_leaves_its_url_to_the_sdk_unless_one_is_set() -> None:
    assert built("openai:gpt-4o-mini").openai_api_base is None
    assert built("openai:gpt-4o-mini", "http://127.0.0.1:9/v1").openai_api_base == (
        "http://127.0.0.1:9/v1"
    )


def test_ollama_defaults_to_the_local_server() -> None:
    model = built("ollama:llama3.1")
    assert isinstance(model, ChatOllama)
    assert model.base_url == "http://127.0.0.1:11434"
    assert model.model == "llama3.1"


def test_anthropic_uses_the_configured_url() -> None:
    model = built("anthropic:claude-sonnet-4-5", "http://127.0.0.1:9")
    assert isinstance(model, ChatAnthropic)
    assert model.anthropic_api_url == "http://127.0.0.1:9"
    assert model.max_retries == 0  # the fallback node retries, not the client


def test_offline_needs_no_model_name_and_is_named_by_its_kind() -> None:
    assert ProviderTarget.parse("offline") == ProviderTarget("offline", "offline")
    assert ProviderTarget.parse("offline:other").id == "offline"
    with pytest.raises(ValueError, match="needs a model"):
        ProviderTarget.parse("openai")


OPENAI_ONLY = Context(model="m", response_format={"type": "json_object"}, openai_params={"seed": 7})


async def test_openai_fields_reach_a_kind_that_speaks_openai(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    primary.script(Reply("{}"))
    deps = agent_deps(["openai:gpt-test"], {"openai": primary.openai_base_url})

    await make_graph(deps).ainvoke(
        {"messages": [HumanMessage(content="json please")]},
        {"configurable": {"thread_id": "openai-fields"}},
        context=OPENAI_ONLY,
    )

    sent = primary.requests[-1].body or {}
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["seed"] == 7


async def test_openai_fields_stay_away_from_anthropic(
    agent_deps: Any, secondary: FakeUpstream
) -> None:
    secondary.script(Reply("{}"))
    deps = agent_deps(["anthropic:claude-test"], {"anthropic": secondary.anthropic_base_url})

    result = await make_graph(deps).ainvoke(
        {"messages": [HumanMessage(content="json please")]},
        {"configurable": {"thread_id": "anthropic-fields"}},
        context=OPENAI_ONLY,
    )

    assert result["provider"] == "anthropic:claude-test"
    sent = secondary.requests[-1].body or {}
    assert "response_format" not in sent
    assert "seed" not in sent
