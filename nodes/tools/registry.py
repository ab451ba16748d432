"""The set of tools the agent may use: built-ins plus plugins.

The graph binds tools by name, so it needs one place that knows every tool. Third
parties add tools without touching this repository by installing a package that
declares an entry point in the ``agent_service.tools`` group. A plugin can never
break the service or shadow a built-in: a plugin that fails to load, yields
something that is not a tool, or reuses a taken name is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

import httpx
from langchain_core.tools import BaseTool

from nodes.tools.calculator import calculator_tool
from nodes.tools.clock import make_clock_tool
from nodes.tools.echo import echo_tool
from nodes.tools.searxng import make_searxng_tool

__all__ = ["ENTRY_POINT_GROUP", "ToolConfig", "ToolRegistry", "build_tool_registry"]

#: Entry-point group in which installed packages declare plugin tools.
ENTRY_POINT_GROUP = "agent_service.tools"

logger = logging.getLogger(__name__)

# What a broken plugin typically raises while being imported, resolved or called.
_PLUGIN_ERRORS = (ImportError, AttributeError, TypeError, ValueError)


class ToolRegistry:
    """An ordered mapping from tool name to tool, with unique names.

    Order is registration order, so the tool list shown to the model is stable. The set may
    grow while the service runs (an MCP server that comes up adds its tools), never shrink (a
    turn may have offered any tool): the router reads it on every turn, so new tools are
    offered from the next turn on.

    Args:
        tools: Tools to register right away, in order.

    Raises:
        ValueError: If two of ``tools`` share a name.
    """

    def __init__(self, tools: Iterable[BaseTool] = ()) -> None:
        self._tools: dict[str, BaseTool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: BaseTool) -> None:
        """Add a tool.

        Args:
            tool: The tool; its ``name`` must not be registered yet.

        Raises:
            ValueError: If a tool with the same name is already registered.
        """
        if tool.name in self._tools:
            raise ValueError(f"A tool named '{tool.name}' is already registered.")
        self._tools[tool.name] = tool

    def replace(self, tool: BaseTool) -> None:
        """Put a new version of a registered tool in its place (an MCP server reconnected).

        Raises:
            KeyError: If no tool of that name is registered.
        """
        if tool.name not in self._tools:
            raise KeyError(tool.name)
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        """Return the registered tool names, in registration order."""
        return list(self._tools)

    def get(self, name: str) -> BaseTool | None:
        """Return the tool called ``name``, or ``None`` if there is none."""
        return self._tools.get(name)

    def tools(self, names: Iterable[str] | None = None) -> list[BaseTool]:
        """Return tools to bind to a model.

        Args:
            names: Which tools, in the order wanted; ``None`` for all of them.

        Returns:
            The tools.

        Raises:
            ValueError: If a name is not registered (a configuration mistake that
                should fail loudly rather than silently drop a tool).
        """
        if names is None:
            return list(self._tools.values())
        wanted = list(names)
        unknown = [name for name in wanted if name not in self._tools]
        if unknown:
            raise ValueError(
                f"Unknown tool(s): {', '.join(unknown)}. Available: {', '.join(self._tools)}."
            )
        return [self._tools[name] for name in wanted]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._tools))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"


@dataclass(frozen=True)
class ToolConfig:
    """Settings of the built-in tools and of plugin loading.

    Attributes:
        searxng_url: Root URL of the SearXNG instance; ``None`` leaves web search
            unconfigured (the tool then reports that it is unavailable).
        searxng_timeout: Seconds one web search may take.
        searxng_top_k: Default and maximum number of search results.
        load_plugins: Whether to load tools from installed entry points.
    """

    searxng_url: str | None = None
    searxng_timeout: float = 10.0
    searxng_top_k: int = 5
    load_plugins: bool = True


def _builtin_tools(config: ToolConfig, http_client: httpx.AsyncClient | None) -> list[BaseTool]:
    searxng = make_searxng_tool(
        config.searxng_url,
        client=http_client,
        timeout=config.searxng_timeout,
        top_k=config.searxng_top_k,
    )
    return [calculator_tool, make_clock_tool(), searxng, echo_tool]


def _describe(entry_point: EntryPoint) -> str:
    return f"'{entry_point.name}' ({entry_point.value})"


def _load_entry_point(entry_point: EntryPoint) -> list[object]:
    """Resolve one entry point to candidate tools; raises one of ``_PLUGIN_ERRORS``."""
    loaded: object = entry_point.load()
    if isinstance(loaded, BaseTool) or not callable(loaded):
        return [loaded]
    produced: object = loaded()
    if isinstance(produced, BaseTool | str | bytes):
        return [produced]
    if isinstance(produced, Iterable):
        return list(produced)
    return [produced]


def _plugin_tools(entry_point: EntryPoint) -> Iterator[BaseTool]:
    """Yield the valid tools of one entry point, logging whatever is skipped."""
    try:
        candidates = _load_entry_point(entry_point)
    except _PLUGIN_ERRORS as exc:
        logger.warning(
            "Skipping tool plugin entry point %s: it failed to load: %r",
            _describe(entry_point),
            exc,
        )
        return
    for candidate in candidates:
        if isinstance(candidate, BaseTool):
            yield candidate
        else:
            logger.warning(
                "Skipping an object from tool plugin entry point %s: expected a "
                "langchain BaseTool, got %s.",
                _describe(entry_point),
                type(candidate).__name__,
            )


def _register_plugins(registry: ToolRegistry) -> list[str]:
    """Register every plugin tool whose name is still free; return their names."""
    loaded: list[str] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        for tool in _plugin_tools(entry_point):
            if tool.name in registry:
                logger.warning(
                    "Skipping tool '%s' from plugin entry point %s: the name is already "
                    "taken by another tool.",
                    tool.name,
                    _describe(entry_point),
                )
                continue
            registry.register(tool)
            loaded.append(tool.name)
            logger.info(
                "Loaded plugin tool '%s' from entry point %s.", tool.name, _describe(entry_point)
            )
    return loaded


def build_tool_registry(
    config: ToolConfig, *, http_client: httpx.AsyncClient | None = None
) -> ToolRegistry:
    """Build the registry of every tool the agent may use.

    Built-ins are registered first (``calculator``, ``clock``, ``searxng_search``,
    ``echo``), so they win any name collision with a plugin.

    Args:
        config: Tool settings.
        http_client: A pooled client for tools that make HTTP calls; owned by the
            caller, who closes it. ``None`` makes those tools use short-lived clients.

    Returns:
        The registry.
    """
    registry = ToolRegistry(_builtin_tools(config, http_client))
    if config.load_plugins:
        loaded = _register_plugins(registry)
        logger.info(
            "Tool plugins loaded from group '%s': %s",
            ENTRY_POINT_GROUP,
            ", ".join(loaded) or "none",
        )
    return registry
