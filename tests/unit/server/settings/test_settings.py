"""Settings from the environment, and their translation into the graph's services."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from nodes.providers.catalogue import ProviderTarget
from nodes.providers.cooldown import InProcessCooldowns
from nodes.providers.registry import provider_kinds
from nodes.tools import ToolConfig, build_tool_registry
from server.settings import Settings
from server.stores.resources import cooldown_store
from server.wiring.services import (
    build_agent_deps,
    default_agent_deps,
    provider_catalogue,
    provider_configs,
)


def test_defaults_run_offline_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENT_MODELS", "DEFAULT_MODEL", "DATABASE_URL", "HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)

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
    settings = Settings(_env_file=None)

    catalogue = provider_catalogue(settings)

    assert catalogue.alias_names() == ["default", "local"]
    assert catalogue.resolve(None) == [
        ProviderTarget("openrouter", "meta-llama/llama-3.1-8b-instruct:free"),
        ProviderTarget("offline", "offline"),
    ]
    assert catalogue.config("ollama").timeout == 300
    assert catalogue.config("openai").timeout == settings.provider_timeout
    key = catalogue.config("openrouter").api_key
    assert key is not None
    assert key.get_secret_value() == "sk-or-secret"
    assert "sk-or-secret" not in repr(settings)


def test_an_unknown_provider_kind_is_refused_with_the_known_ones() -> None:
    settings = Settings(_env_file=None, agent_models={"x": ["openia:gpt-4o"]})
    with pytest.raises(ValueError, match=r"unknown provider endpoint 'openia'.*openrouter"):
        provider_catalogue(settings)


def test_openai_compatible_needs_a_base_url() -> None:
    settings = Settings(
        _env_file=None,
        agent_models={"x": ["openai-compatible:local"]},
        openai_compatible_base_url=None,
    )
    with pytest.raises(ValueError, match="OPENAI_COMPATIBLE_BASE_URL"):
        provider_catalogue(settings)


def test_empty_chains_are_invalid() -> None:
    with pytest.raises(ValidationError, match="without providers"):
        Settings(_env_file=None, agent_models={"x": []})


def test_default_model_must_exist() -> None:
    settings = Settings(_env_file=None, agent_models={"a": ["offline"]}, default_model="b")
    with pytest.raises(ValueError, match="default model alias 'b'"):
        provider_catalogue(settings)


def test_summary_model_reaches_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_MODELS", '{"main": ["ollama:llama3.1"], "cheap": ["offline"]}')
    monkeypatch.setenv("SUMMARY_MODEL", "cheap")
    catalogue = provider_catalogue(Settings(_env_file=None))

    assert catalogue.summary_alias == "cheap"


def test_an_unknown_summary_model_is_refused_at_start() -> None:
    settings = Settings(_env_file=None, agent_models={"a": ["offline"]}, summary_model="b")
    with pytest.raises(ValueError, match="summary model alias 'b'"):
        provider_catalogue(settings)


async def test_deps_offer_the_built_in_tools_and_plugins_only_when_allowed() -> None:
    built_in = build_tool_registry(ToolConfig(load_plugins=False)).names()
    settings = Settings(_env_file=None, load_plugin_tools=False)
    deps = build_agent_deps(settings, cooldowns=cooldown_store(settings, None))
    assert deps.tools.names() == built_in
    await deps.providers.aclose()

    # The dev group installs the example plugin (examples/agent-tool-dice).
    settings = Settings(_env_file=None, load_plugin_tools=True)
    deps = build_agent_deps(settings, cooldowns=cooldown_store(settings, None))
    assert deps.tools.names()[: len(built_in)] == built_in
    assert "roll_dice" in deps.tools.names()[len(built_in) :]
    await deps.providers.aclose()


def test_a_hosted_provider_without_its_key_is_refused_at_start() -> None:
    settings = Settings(
        _env_file=None,
        agent_models={"x": ["anthropic:claude-sonnet-4-5"]},
        anthropic_api_key=None,
        anthropic_base_url=None,
    )
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        provider_catalogue(settings)


# --- provider kinds: their variables come from the registry ---------------------------------

DECLARED = [
    (spec.kind, role, setting.env)
    for spec in provider_kinds().values()
    for role, setting in spec.settings()
]


@pytest.mark.parametrize(("kind", "role", "env"), DECLARED)
def test_every_declared_provider_variable_is_read_by_its_name(
    monkeypatch: pytest.MonkeyPatch, kind: str, role: str, env: str
) -> None:
    value = f"http://127.0.0.1:9/{kind}" if role == "base_url" else f"sk-{kind}"
    monkeypatch.setenv(env, value)
    settings = Settings(_env_file=None)

    config = provider_configs(settings)[kind]

    assert env.lower() in Settings.model_fields
    if role == "base_url":
        assert config.base_url == value
    else:
        assert config.api_key is not None
        assert config.api_key.get_secret_value() == value
        assert value not in repr(settings)


@pytest.mark.parametrize(
    ("kind", "env"),
    [
        (spec.kind, setting.env)
        for spec in provider_kinds().values()
        for _, setting in spec.settings()
        if setting.required
    ],
)
def test_a_required_provider_variable_is_named_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, kind: str, env: str
) -> None:
    for _, setting in provider_kinds()[kind].settings():
        monkeypatch.delenv(setting.env, raising=False)
    settings = Settings(_env_file=None, agent_models={"a": [f"{kind}:x"]})
    with pytest.raises(ValueError, match=rf"which needs {env}$"):
        provider_catalogue(settings)


def test_every_variable_in_env_example_is_a_setting() -> None:
    text = (Path(__file__).resolve().parents[4] / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    assert {"OPENAI_API_KEY", "PROVIDER_TIMEOUT", "REDIS_URL"} <= names
    unknown = sorted(name for name in names if name.lower() not in Settings.model_fields)
    assert not unknown, f".env.example shows variables server/settings/ does not read: {unknown}"


# --- cooldowns: built once, by server.stores.resources.cooldown_store ---------------------------


def test_the_graph_uses_the_cooldown_store_it_is_given() -> None:
    settings = Settings(_env_file=None, load_plugin_tools=False)
    store = InProcessCooldowns(threshold=9, cooldown=1.0)
    assert build_agent_deps(settings, cooldowns=store).cooldowns is store


def test_the_langgraph_dev_graph_gets_cooldowns_from_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("AGENT_MODELS", '{"offline": ["offline"]}')
    monkeypatch.setenv("PROVIDER_COOLDOWN_FAILURES", "7")
    monkeypatch.setenv("PROVIDER_COOLDOWN_SECONDS", "12.5")
    monkeypatch.setenv("LOAD_PLUGIN_TOOLS", "false")
    default_agent_deps.cache_clear()
    try:
        cooldowns = default_agent_deps().cooldowns
    finally:
        default_agent_deps.cache_clear()
    assert isinstance(cooldowns, InProcessCooldowns)
    assert (cooldowns.threshold, cooldowns.cooldown) == (7, 12.5)


def test_provider_variables_are_read_from_dotenv_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("OLLAMA_BASE_URL=http://127.0.0.1:9/dotenv\n")
    settings = Settings(_env_file=dotenv)
    assert provider_configs(settings)["ollama"].base_url == "http://127.0.0.1:9/dotenv"
