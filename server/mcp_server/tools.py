"""The tool catalogue as MCP tools: each LangChain tool listed and called as itself.

A tool is described to MCP clients exactly as it is to the model (`convert_to_openai_tool`:
its name, description and JSON schema of arguments), and a call runs it the way the graph's
tools node does (`nodes.tool_node.run_tool_call`): the same timeout (TOOL_TIMEOUT), output cap
(TOOL_OUTPUT_MAX_CHARS) and error policy, counted in the same tool metrics.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolCall
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from mcp import types

from nodes.deps import AgentDeps
from nodes.messages import content_text
from nodes.tool_node import run_tool_call
from server.settings import Settings

__all__ = ["call_catalogue_tool", "catalogue_tool"]

_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def catalogue_tool(tool: BaseTool) -> types.Tool:
    """The MCP description of a catalogue tool: what the model sees of it."""
    function = convert_to_openai_tool(tool)["function"]
    schema = dict(function.get("parameters") or _EMPTY_OBJECT)
    schema.setdefault("type", "object")
    return types.Tool(
        name=tool.name, description=function.get("description") or None, inputSchema=schema
    )


async def call_catalogue_tool(
    tool: BaseTool,
    arguments: dict[str, Any],
    *,
    deps: AgentDeps,
    settings: Settings,
    caller: str | None = None,
) -> types.CallToolResult:
    """Run one catalogue tool as the graph would; its named failures are a tool error.

    `caller` is the key id of the MCP client: tools that keep data per key see its own.
    """
    call = ToolCall(name=tool.name, args=arguments, id="mcp", type="tool_call")
    message = await run_tool_call(
        tool,
        call,
        time_limit=settings.tool_timeout,
        max_chars=settings.tool_output_max_chars,
        observer=deps.observer,
        caller=caller,
    )
    text = content_text(message.content)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], isError=message.status == "error"
    )
