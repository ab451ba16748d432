"""The catalogue as MCP tools: what is listed, and a call run with the graph's policy."""

from __future__ import annotations

from langchain_core.tools import tool
from mcp.types import TextContent

from graph.errors import ErrorCode, ModelNotFoundError
from nodes.tools.calculator import calculator_tool
from nodes.tools.echo import echo_tool
from server.mcp_server.chat import ChatArguments
from server.mcp_server.results import refusal, structured, tool_error
from server.mcp_server.tools import catalogue_tool
from server.refusals import Refused


@tool
def ping() -> str:
    """Answer pong."""
    return "pong"


def test_a_catalogue_tool_is_listed_with_the_schema_the_model_sees() -> None:
    listed = catalogue_tool(calculator_tool)

    assert listed.name == "calculator"
    assert listed.description == calculator_tool.description
    assert listed.inputSchema["type"] == "object"
    assert listed.inputSchema["required"] == ["expression"]
    assert set(catalogue_tool(echo_tool).inputSchema["properties"]) == {"text"}


def test_a_tool_without_arguments_still_has_an_object_schema() -> None:
    schema = catalogue_tool(ping).inputSchema

    assert schema["type"] == "object"
    assert schema.get("properties", {}) == {}


def test_refusals_and_errors_name_their_code() -> None:
    unknown = refusal(ModelNotFoundError("nope", ["offline"]))
    busy = refusal(Refused(ErrorCode.THREAD_BUSY, "Busy."))

    assert unknown.isError
    assert isinstance(unknown.content[0], TextContent)
    assert isinstance(busy.content[0], TextContent)
    assert unknown.content[0].text.startswith("Error (model_not_found): The model 'nope'")
    assert busy.content[0].text == "Error (thread_busy): Busy."
    no_tool = tool_error("No such tool.")
    assert isinstance(no_tool.content[0], TextContent)
    assert no_tool.content[0].text == "Error: No such tool."


def test_a_structured_result_carries_its_json_as_text() -> None:
    result = structured({"answer": "é", "thread_id": "t"})

    assert not result.isError
    assert result.structuredContent == {"answer": "é", "thread_id": "t"}
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text == '{"answer": "é", "thread_id": "t"}'


def test_empty_optional_chat_arguments_are_absent() -> None:
    parsed = ChatArguments.parse({"message": "hi", "thread_id": "  ", "model": ""})

    assert parsed == ChatArguments("hi", None, None)
    assert ChatArguments.parse({"message": "hi", "thread_id": " t "}).thread_id == "t"
