"""The provider registry: every kind is one module of nodes/providers/kinds/, found on import.

The parametrised tests run over whatever kinds are registered, so a new kind is covered
(and must be documented) without editing them; the `extra_kind` tests drop a kind in as one
module and follow it through settings, the catalogue and the graph.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage

from graph.context import Context
from nodes.providers import kinds
from nodes.providers.catalogue import ProviderCatalogue, ProviderTarget
from nodes.providers.registry import (
    EnvSetting,
    ProviderConfig,
    ProviderSpec,
    discover,
    provider_kinds,
)
from server.settings import Settings, settings_model
from server.wiring.services import provider_catalogue
from tests.factories import make_deps, make_graph

ENV_EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"
KINDS = sorted(provider_kinds())

#: A whole provider kind, as its module would be written.
EXTRA_KIND = '''
"""`fake-echo`: answers with what it was built from (a kind added by a test)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from nodes.providers.registry import EnvSetting, ProviderConfig, ProviderSpec

CLOSED: list[str] = []


class EchoModel(FakeListChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self  # it never calls tools


@dataclass
class EchoModels:
    config: ProviderConfig

    def chat_model(self, model: str) -> BaseChatModel:
        key = self.config.api_key.get_secret_value() if self.config.api_key else "no key"
        return EchoModel(responses=[f"{model} at {self.config.base_url} with {key}"])

    async def aclose(self) -> None:
        CLOSED.append(self.config.kind)


KIND = ProviderSpec(
    kind="fake-echo",
    open=EchoModels,
    api_key=EnvSetting("FAKE_ECHO_API_KEY", required=True),
    base_url=EnvSetting("FAKE_ECHO_BASE_URL"),
    default_base_url="http://127.0.0.1:9/echo",
)
'''


def documented_names() -> set[str]:
    """Every variable `.env.example` shows, set or commented out (`# NAME=`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def documented_kinds() -> list[str]:
    """The kinds listed on the `# kinds:` line of `.env.example`."""
    match = re.search(r"^# kinds: (.+)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert match, ".env.example lost its '# kinds:' line"
    return [kind.strip() for kind in match.group(1).split(",")]


def undocumented(spec: ProviderSpec) -> list[str]:
    names = documented_names()
    return [setting.env for _, setting in spec.settings() if setting.env not in names]


def write_kind(directory: Path, module: str, source: str) -> None:
    (directory / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def extra_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderSpec]:
    """`fake-echo`, registered by putting its module among the kinds (for this test only)."""
    write_kind(tmp_path, "fake_echo", EXTRA_KIND)
    with monkeypatch.context() as patch:
        patch.setattr(kinds, "__path__", [*kinds.__path__, str(tmp_path)])
        importlib.invalidate_caches()
        provider_kinds.cache_clear()
        try:
            yield provider_kinds()["fake-echo"]
        finally:
            sys.modules.pop(f"{kinds.__name__}.fake_echo", None)
    provider_kinds.cache_clear()


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_documented_in_env_example(kind: str) -> None:
    spec = provider_kinds()[kind]
    assert not undocumented(spec), f"add {undocumented(spec)} to .env.example"
    assert kind in documented_kinds(), "add the kind to the '# kinds:' line of .env.example"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_its_chat_model_without_a_request(kind: str) -> None:
    spec = provider_kinds()[kind]
    target = ProviderTarget.parse(f"{kind}:some-model")
    configs = {kind: ProviderConfig(kind=kind, base_url="http://127.0.0.1:9/v1", timeout=3.0)}
    catalogue = ProviderCatalogue(aliases={"a": [target]}, default_alias="a", configs=configs)

    model = catalogue.chat_model(target)

    assert isinstance(model, BaseChatModel)
    assert catalogue.chat_model(target) is model  # built once per target
    assert target.id == (kind if spec.single_model is not None else f"{kind}:some-model")


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_closes_what_its_models_share(kind: str) -> None:
    target = ProviderTarget.parse(f"{kind}:some-model")
    configs = {kind: ProviderConfig(kind=kind, base_url="http://127.0.0.1:9/v1")}
    catalogue = ProviderCatalogue(aliases={"a": [target]}, default_alias="a", configs=configs)
    first = catalogue.chat_model(target)

    await catalogue.aclose()

    assert catalogue.chat_model(target) is not first  # rebuilt, on a new client
    await catalogue.aclose()


def test_the_documentation_check_would_catch_an_undocumented_kind(
    extra_kind: ProviderSpec,
) -> None:
    assert undocumented(extra_kind) == ["FAKE_ECHO_API_KEY", "FAKE_ECHO_BASE_URL"]
    assert extra_kind.kind not in documented_kinds()
    assert undocumented(provider_kinds()["openai"]) == []


def test_a_kind_added_as_one_module_is_registered(extra_kind: ProviderSpec) -> None:
    assert provider_kinds()["fake-echo"] is extra_kind
    assert ProviderTarget.parse("fake-echo:m1").spec is extra_kind
    with pytest.raises(ValueError, match=r"unknown provider endpoint 'fake-ech'.*fake-echo"):
        ProviderTarget.parse("fake-ech:m1")


async def test_a_kind_added_as_one_module_gets_its_settings(
    extra_kind: ProviderSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_class = settings_model(provider_kinds().values())
    assert {"fake_echo_api_key", "fake_echo_base_url"} <= model_class.model_fields.keys()
    monkeypatch.setenv("AGENT_MODELS", '{"echo": ["fake-echo:m1"]}')
    monkeypatch.setenv("PROVIDER_TIMEOUTS", '{"fake-echo": 7}')
    # `Settings` is this very model without the extra kind: the same fields but for its own.
    without_key = cast(Settings, model_class(_env_file=None))
    with pytest.raises(ValueError, match="needs FAKE_ECHO_API_KEY"):
        provider_catalogue(without_key)

    monkeypatch.setenv("FAKE_ECHO_API_KEY", "sk-echo")
    settings = cast(Settings, model_class(_env_file=None))
    catalogue = provider_catalogue(settings)
    (target,) = catalogue.resolve("echo")
    answer = await catalogue.chat_model(target).ainvoke("hi")

    assert answer.content == "m1 at http://127.0.0.1:9/echo with sk-echo"
    assert catalogue.config("fake-echo").timeout == 7
    await catalogue.aclose()
    assert sys.modules[f"{kinds.__name__}.fake_echo"].CLOSED == ["fake-echo"]


async def test_a_kind_added_as_one_module_answers_through_the_graph(
    extra_kind: ProviderSpec,
) -> None:
    deps = make_deps(["fake-echo:m2"], {"fake-echo": "http://127.0.0.1:9/proxy"})

    result = await make_graph(deps).ainvoke(
        {"messages": [HumanMessage(content="hello")]},
        {"configurable": {"thread_id": "echo"}},
        context=Context(model="m"),
    )

    assert isinstance(result["messages"][-1], AIMessage)
    assert result["messages"][-1].content == "m2 at http://127.0.0.1:9/proxy with no key"
    assert result["provider"] == "fake-echo:m2"
    await deps.providers.aclose()


def test_a_kind_module_without_a_declaration_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "kinds_without_kind"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_kind(package, "stray", "VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(TypeError, match=r"kinds_without_kind\.stray must define KIND"):
            discover(importlib.import_module("kinds_without_kind"))
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("kinds_without_kind")]:
            del sys.modules[name]


def test_a_kind_declared_twice_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "kinds_twice"
    package.mkdir()
    (package / "__init__.py").write_text("")
    twin = "from nodes.providers.kinds.offline import KIND\n"
    write_kind(package, "one", twin)
    write_kind(package, "two", twin)
    write_kind(package, "_helper", "raise AssertionError('private modules are not imported')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ValueError, match=r"'offline' is declared twice \(kinds_twice\.two\)"):
            discover(importlib.import_module("kinds_twice"))
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("kinds_twice")]:
            del sys.modules[name]


def test_env_names_must_be_upper_case_identifiers() -> None:
    with pytest.raises(ValueError, match="UPPER_CASE"):
        EnvSetting("openai_api_key")
    with pytest.raises(ValueError, match="UPPER_CASE"):
        EnvSetting("OPENAI-API-KEY")
    assert EnvSetting("OPENAI_API_KEY").field == "openai_api_key"


def test_a_kind_whose_variable_is_already_a_setting_is_refused() -> None:
    clash = ProviderSpec(
        kind="clash", open=provider_kinds()["offline"].open, base_url=EnvSetting("REDIS_URL")
    )
    with pytest.raises(ValueError, match="REDIS_URL of provider kind 'clash' is taken"):
        settings_model([*provider_kinds().values(), clash])
