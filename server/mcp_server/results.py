"""What an MCP tool call answers: a result, or a tool error the client's model can read.

MCP separates protocol errors (a JSON-RPC error: the call itself was malformed) from tool
errors (a result with `isError: true`, whose text the client shows its model). Everything
the service refuses on purpose is a tool error, so a client keeps its session and its model
can react: an unknown model, a busy thread, a spent budget, every provider down.
"""

from __future__ import annotations

import json
from typing import Any

from mcp import types

from graph.errors import AgentError, ErrorCode
from server.refusals import Refused

__all__ = ["REFUSALS", "refusal", "structured", "tool_error"]

REFUSALS = (AgentError, Refused)
"""What a call may raise on purpose (the doors' own errors): each becomes a tool error."""


def tool_error(message: str, code: ErrorCode | None = None) -> types.CallToolResult:
    """A tool error: `isError` with the message, led by its code when there is one."""
    text = f"Error ({code.value}): {message}" if code is not None else f"Error: {message}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], isError=True)


def refusal(error: AgentError | Refused) -> types.CallToolResult:
    """The tool error of one of `REFUSALS`, with its message and code."""
    return tool_error(error.message, error.code)


def structured(content: dict[str, Any]) -> types.CallToolResult:
    """A result with structured content, and its JSON as text for clients that read only text.

    The text is the serialised structure, as the MCP specification asks, so a client that
    passes only text to its model still gives it every field (the thread id above all).
    """
    text = json.dumps(content, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structuredContent=content
    )
