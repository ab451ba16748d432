"""Tools the agent can call (calculator, clock, web search, echo) and the plugin registry."""

from __future__ import annotations

from nodes.tools.calculator import evaluate
from nodes.tools.registry import ENTRY_POINT_GROUP, ToolConfig, ToolRegistry, build_tool_registry

__all__ = ["ENTRY_POINT_GROUP", "ToolConfig", "ToolRegistry", "build_tool_registry", "evaluate"]
