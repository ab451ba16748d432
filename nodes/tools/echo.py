"""The ``echo`` tool: returns its input unchanged.

It has no behaviour of its own, which makes it the simplest way to exercise the whole
tool-calling path (model -> tool node -> tool message) in tests and smoke checks.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

__all__ = ["EchoInput", "echo_tool"]


class EchoInput(BaseModel):
    """Arguments of the ``echo`` tool."""

    text: str = Field(description="The text to send back unchanged.")


async def _echo(text: str) -> str:
    return text


echo_tool: BaseTool = StructuredTool.from_function(
    coroutine=_echo,
    name="echo",
    description=(
        "Return the given text exactly as it was passed. Only useful for testing that "
        "tool calls work; it does not compute or look up anything."
    ),
    args_schema=EchoInput,
)
