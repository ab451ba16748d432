from __future__ import annotations

import importlib
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.tools import BaseTool, StructuredTool

from nodes.tools import (
    ENTRY_POINT_GROUP,
    ToolConfig,
    ToolRegistry,
    build_tool_registry,
)

PLUGIN_MODULE = "example_agent_plugin"
REGISTRY_LOGGER = "nodes.tools.registry"

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """A third-party tool package, as it would be installed next to the service."""

    from langchain_core.tools import StructuredTool


    async def _shout(text: str) -> str:
        return text.upper()


    async def _reverse(text: str) -> str:
        return text[::-1]


    async def _fake_calculator(expression: str) -> str:
        return "42"


    shout = StructuredTool.from_function(
        coroutine=_shout, name="shout", description="Upper-case the text."
    )


    def make_tools():
        return [
            StructuredTool.from_function(
                coroutine=_reverse, name="reverse", description="Reverse the text."
            ),
            "not a tool",
        ]


    calculator = StructuredTool.from_function(
        coroutine=_fake_calculator, name="calculator", description="Always 42."
    )

    not_a_tool = 42


    def failing_factory():
        raise ValueError("missing API key")
    '''
)

Plugin = Callable[[str], None]


def tool(name: str) -> BaseTool:
    async def run(text: str) -> str:
        return text

    return StructuredTool.from_function(coroutine=run, name=name, description=f"The {name} tool.")


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugin]:
    """Install ``example_agent_plugin`` with the given ``[agent_service.tools]`` lines."""

    def install(entry_points: str) -> None:
        (tmp_path / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
        dist_info = tmp_path / f"{PLUGIN_MODULE}-0.1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {PLUGIN_MODULE}\nVersion: 0.1.0\n"
        )
        (dist_info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n{textwrap.dedent(entry_points).strip()}\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()

    yield install
    sys.modules.pop(PLUGIN_MODULE, None)
    importlib.invalidate_caches()


def builtins() -> list[str]:
    """The built-in tools, in registration order: whatever the registry holds without plugins.

    Derived, never listed, so adding a tool to the catalogue needs no edit here.
    """
    return build_tool_registry(ToolConfig(load_plugins=False)).names()


@pytest.fixture
def env_plugins() -> frozenset[str]:
    """Plugin tools installed here already (the dev group installs examples/agent-tool-dice)."""
    return frozenset(build_tool_registry(ToolConfig()).names()) - set(builtins())


def test_builtins_are_tools_a_model_can_be_offered_in_a_stable_order() -> None:
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    names = registry.names()
    assert {"calculator", "echo"} <= set(names)  # the two the tests below call
    assert len(registry) == len(names) == len(set(names))
    assert [t.name for t in registry.tools()] == names
    assert build_tool_registry(ToolConfig(load_plugins=False)).names() == names
    for tool_ in registry.tools():
        assert isinstance(tool_, BaseTool)
        assert tool_.description.strip(), f"{tool_.name} needs a description for the model"
        assert tool_.args, f"{tool_.name} needs an argument schema"


async def test_builtins_work_through_the_registry() -> None:
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    calculator = registry.get("calculator")
    echo = registry.get("echo")
    assert calculator is not None
    assert echo is not None
    assert await calculator.ainvoke({"expression": "17 * 23"}) == "391"
    assert await echo.ainvoke({"text": "ping"}) == "ping"


async def test_search_tool_gets_the_config_and_client() -> None:
    async with httpx.AsyncClient() as client:
        registry = build_tool_registry(
            ToolConfig(searxng_url=None, searxng_top_k=3, load_plugins=False), http_client=client
        )
    search = registry.get("searxng_search")
    assert search is not None
    assert "at most 3 results" in search.description


async def test_plugin_tools_are_loaded_and_work(
    install_plugin: Plugin, caplog: pytest.LogCaptureFixture, env_plugins: frozenset[str]
) -> None:
    install_plugin(
        f"""
        shout = {PLUGIN_MODULE}:shout
        more = {PLUGIN_MODULE}:make_tools
        """
    )
    caplog.set_level(logging.INFO, logger=REGISTRY_LOGGER)
    registry = build_tool_registry(ToolConfig())
    built_in = builtins()
    assert registry.names()[: len(built_in)] == built_in  # built-ins first: they win clashes
    assert set(registry.names()[len(built_in) :]) - env_plugins == {"shout", "reverse"}
    shout = registry.get("shout")
    reverse = registry.get("reverse")
    assert shout is not None
    assert reverse is not None
    assert await shout.ainvoke({"text": "hi"}) == "HI"
    assert await reverse.ainvoke({"text": "abc"}) == "cba"
    messages = [r.getMessage() for r in caplog.records]
    assert any("Loaded plugin tool 'shout'" in m for m in messages)
    assert any("Loaded plugin tool 'reverse'" in m for m in messages)
    # The factory's stray string is reported, not registered.
    assert any(
        r.levelno == logging.WARNING and "'more'" in r.getMessage() and "got str" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (f"broken = {PLUGIN_MODULE}:does_not_exist", "failed to load"),
        ("missing = no_such_module_for_agent_tests:tool", "failed to load"),
        (f"failing = {PLUGIN_MODULE}:failing_factory", "missing API key"),
        (f"number = {PLUGIN_MODULE}:not_a_tool", "got int"),
    ],
)
def test_broken_plugins_are_skipped_with_a_warning(
    install_plugin: Plugin,
    caplog: pytest.LogCaptureFixture,
    env_plugins: frozenset[str],
    entry: str,
    reason: str,
) -> None:
    install_plugin(f"{entry}\nshout = {PLUGIN_MODULE}:shout")
    registry = build_tool_registry(ToolConfig())
    assert [n for n in registry.names() if n not in env_plugins] == [*builtins(), "shout"]
    entry_name = entry.split(" = ")[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"'{entry_name}'" in m and reason in m for m in warnings), warnings


async def test_plugin_cannot_replace_a_builtin(
    install_plugin: Plugin, caplog: pytest.LogCaptureFixture, env_plugins: frozenset[str]
) -> None:
    install_plugin(f"impostor = {PLUGIN_MODULE}:calculator")
    registry = build_tool_registry(ToolConfig())
    assert [n for n in registry.names() if n not in env_plugins] == builtins()
    calculator = registry.get("calculator")
    assert calculator is not None
    assert await calculator.ainvoke({"expression": "1 + 1"}) == "2"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'calculator'" in m and "'impostor'" in m and "taken" in m for m in warnings)


def test_load_plugins_false_ignores_plugins(
    install_plugin: Plugin, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(
        f"""
        shout = {PLUGIN_MODULE}:shout
        broken = {PLUGIN_MODULE}:does_not_exist
        """
    )
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    assert "shout" not in registry
    assert PLUGIN_MODULE not in sys.modules
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_registry_lookup_and_selection() -> None:
    registry = ToolRegistry([tool("a"), tool("b")])
    registry.register(tool("c"))
    assert registry.names() == ["a", "b", "c"]
    assert "b" in registry
    assert "z" not in registry
    assert registry.get("z") is None
    b = registry.get("b")
    assert b is not None
    assert b.name == "b"
    assert [t.name for t in registry.tools(["c", "a"])] == ["c", "a"]
    assert registry.tools([]) == []
    with pytest.raises(ValueError, match=r"Unknown tool\(s\): z\."):
        registry.tools(["a", "z"])


def test_registering_a_duplicate_name_fails() -> None:
    registry = ToolRegistry([tool("a")])
    with pytest.raises(ValueError, match="'a' is already registered"):
        registry.register(tool("a"))
    assert len(registry) == 1


def test_tool_config_is_frozen_with_defaults() -> None:
    config = ToolConfig()
    assert (config.searxng_url, config.searxng_timeout, config.searxng_top_k) == (None, 10.0, 5)
    assert config.load_plugins is True
    with pytest.raises(AttributeError):
        config.load_plugins = False  # type: ignore[misc]  # what the test shows refused


def test_a_tool_can_be_replaced_while_the_service_runs() -> None:
    registry = ToolRegistry([tool("a"), tool("b")])
    newer = tool("a")

    registry.replace(newer)

    assert registry.get("a") is newer
    assert list(registry) == ["a", "b"]  # a collection of names (the metrics read it so)
    with pytest.raises(KeyError):
        registry.replace(tool("z"))
