"""Settings from the environment, and their translation into the graph's services."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nodes.providers.catalogue import ProviderKind, ProviderTarget
from nodes.tools import ToolConfig, build_tool_registry
from server.settings import Settings
from server.wiring import build_agent_deps, provider_catalogue


def test_defaults_run_offline_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENT_MODELS", "DEFAULT_MODEL", "DATABASE_URL", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.agent_models == {"offline": ["offline"]}
    assert settings.default_alias == "offline"
    assert settings.database_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_agent_models_and_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AGENT_MODELS",
        '{"default": ["openrouter:meta-llama/llama-3.1-8b-instruct:free", "offline"],'
        ' "local": ["ollama:llama3.1"]}',
    )
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-secret")
    monkeypatch.setenv("PROVIDER_TIMEOUTS", '{"ollama": 300}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    catalogue = provider_catalogue(settings)

    assert catalogue.alias_names() == ["default", "local"]
    assert catalogue.resolve(None) == [
        ProviderTarget(ProviderKind.OPENROUTER, "meta-llama/llama-3.1-8b-instruct:free"),
        ProviderTarget(ProviderKind.OFFLINE, "offline"),
    ]
    assert catalogue.config(ProviderKind.OLLAMA).timeout == 300
    assert catalogue.config(ProviderKind.OPENAI).timeout == settings.provider_timeout
    key = catalogue.config(ProviderKind.OPENROUTER).api_key
    assert key is not None
    assert key.get_secret_value() == "sk-or-secret"
    assert "sk-or-secret" not in repr(settings)


def test_an_unknown_provider_kind_is_refused_with_the_known_ones() -> None:
    settings = Settings(_env_file=None, agent_models={"x": ["openia:gpt-4o"]})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"unknown provider kind 'openia'.*openrouter"):
        provider_catalogue(settings)


def test_openai_compatible_needs_a_base_url() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        agent_models={"x": ["openai-compatible:local"]},
        openai_compatible_base_url=None,
    )
    with pytest.raises(ValueError, match="OPENAI_COMPATIBLE_BASE_URL"):
        provider_catalogue(settings)


def test_empty_chains_are_invalid() -> None:
    with pytest.raises(ValidationError, match="without providers"):
        Settings(_env_file=None, agent_models={"x": []})  # type: ignore[call-arg]


def test_default_model_must_exist() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, agent_models={"a": ["offline"]}, default_model="b"
    )
    with pytest.raises(ValueError, match="default model alias 'b'"):
        provider_catalogue(settings)


async def test_deps_offer_the_built_in_tools_and_plugins_only_when_allowed() -> None:
    built_in = build_tool_registry(ToolConfig(load_plugins=False)).names()
    settings = Settings(_env_file=None, load_plugin_tools=False)  # type: ignore[call-arg]
    deps = build_agent_deps(settings)
    assert deps.tools.names() == built_in
    await deps.providers.aclose()

    # The dev group installs the example plugin (examples/agent-tool-dice).
    settings = Settings(_env_file=None, load_plugin_tools=True)  # type: ignore[call-arg]
    deps = build_agent_deps(settings)
    assert deps.tools.names()[: len(built_in)] == built_in
    assert "roll_dice" in deps.tools.names()[len(built_in) :]
    await deps.providers.aclose()


async def test_deps_pass_the_search_settings_to_the_search_tool() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, load_plugin_tools=False, searxng_top_k=7
    )
    deps = build_agent_deps(settings)
    search = deps.tools.get("searxng_search")
    assert search is not None
    assert "at most 7 results" in search.description
    await deps.providers.aclose()


def test_a_hosted_provider_without_its_key_is_refused_at_start() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        agent_models={"x": ["anthropic:claude-sonnet-4-5"]},
        anthropic_api_key=None,
        anthropic_base_url=None,
    )
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        provider_catalogue(settings)
