from __future__ import annotations

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from nodes.tools.echo import echo_tool


@pytest.mark.parametrize("text", ["hello", "", "  spaced  \n", "ünïcødé ✓", '{"json": true}'])
async def test_echo_returns_text_unchanged(text: str) -> None:
    assert await echo_tool.ainvoke({"text": text}) == text


def test_echo_metadata() -> None:
    assert echo_tool.name == "echo"
    properties = convert_to_openai_tool(echo_tool)["function"]["parameters"]["properties"]
    assert list(properties) == ["text"]
    assert properties["text"]["description"]
