"""A model's tools are converted once per tool set, not on every turn."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.runnables import RunnableBinding
from langchain_core.tools import BaseTool

from nodes.providers import catalogue as catalogue_module
from nodes.providers.catalogue import ProviderCatalogue, ProviderTarget, tool_set_key
from nodes.tools import ToolConfig, build_tool_registry

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object"}},
}


def catalogue() -> ProviderCatalogue:
    return ProviderCatalogue(aliases={"m": [ProviderTarget.parse("offline")]}, default_alias="m")


def test_the_same_tool_set_is_bound_once_and_reused() -> None:
    providers = catalogue()
    target = providers.resolve("m")[0]
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    tools: list[BaseTool | dict[str, Any]] = [*registry.tools(["calculator", "clock"]), WEATHER]

    first = providers.with_tools(target, tools, {})
    again = providers.with_tools(target, list(tools), {})

    assert again is first
    assert isinstance(first, RunnableBinding)
    assert [t["function"]["name"] for t in first.kwargs["tools"]] == [
        "calculator",
        "clock",
        "weather",
    ]


def test_another_tool_set_or_option_is_bound_apart() -> None:
    providers = catalogue()
    target = providers.resolve("m")[0]
    other_weather = {**WEATHER, "function": {**WEATHER["function"], "description": "Rain"}}

    base = providers.with_tools(target, [WEATHER], {})

    assert providers.with_tools(target, [other_weather], {}) is not base
    forced = providers.with_tools(target, [WEATHER], {"tool_choice": "required"})
    assert forced is not base
    assert isinstance(forced, RunnableBinding)
    assert forced.kwargs["tool_choice"] == "required"


def test_bound_tool_sets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue_module, "MAX_BOUND_TOOL_SETS", 3)
    providers = catalogue()
    target = providers.resolve("m")[0]
    specs = [{**WEATHER, "function": {**WEATHER["function"], "name": f"t{i}"}} for i in range(5)]
    bound = [providers.with_tools(target, [spec], {}) for spec in specs]

    assert len(providers._bound) == 3
    assert providers.with_tools(target, [specs[4]], {}) is bound[4]  # the newest stay
    assert providers.with_tools(target, [specs[0]], {}) is not bound[0]  # the oldest went


def test_the_key_names_server_tools_and_spells_client_tools() -> None:
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    key = tool_set_key([*registry.tools(["echo"]), WEATHER], {"parallel_tool_calls": False})
    assert '"echo"' in key
    assert '"weather"' in key
    assert "parallel_tool_calls" in key
