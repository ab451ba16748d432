"""What a Responses request asks for, read for the service: refusals, tools, formats, echoes.

Pure functions of `CreateResponseRequest` (`server.responses.protocol`): which of OpenAI's
parameters the service refuses, the request's function tools and `tool_choice` and
`text.format` in the chat door's form, and the `reasoning` and `text` the response echoes.
"""

from __future__ import annotations

from typing import Any

from graph.errors import ErrorCode
from server.errors import OpenAIHTTPError
from server.responses.protocol import CreateResponseRequest, FunctionTool, HostedTool
from server.responses.wire import Reasoning

REFUSED = (
    "background",
    "background_options",
    "context_management",
    "conversation",
    "include",
    "max_tool_calls",
    "moderation",
    "prompt",
    "top_logprobs",
)
"""OpenAI's parameters the service cannot honour: a 400 when set to anything but "unset"."""


def unset(value: Any) -> bool:
    """None, false, 0, an empty list or object, or an object of nulls: asks for nothing."""
    if isinstance(value, dict):
        return all(item is None for item in value.values())
    return value is None or value is False or value == 0 or value == []


def not_found(response_id: str) -> OpenAIHTTPError:
    """The 404 of an unknown (or deleted, unstored, another key's) response id."""
    return OpenAIHTTPError(
        404,
        f"Response with id '{response_id}' not found.",
        code=ErrorCode.RESPONSE_NOT_FOUND,
        param="response_id",
    )


def unsupported(message: str, param: str, *, value: bool = True) -> OpenAIHTTPError:
    """A 400 for what the service cannot honour: a value (`unsupported_value`) or a parameter."""
    code = ErrorCode.UNSUPPORTED_VALUE if value else ErrorCode.UNSUPPORTED_PARAMETER
    return OpenAIHTTPError(400, message, code=code, param=param)


def response_format(request: CreateResponseRequest) -> dict[str, Any] | None:
    """`text.format` as the chat door's `response_format` (None: plain text).

    Raises:
        OpenAIHTTPError: 400 for a format type other than text, json_object, json_schema.
    """
    fmt = (request.text.format if request.text else None) or {"type": "text"}
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise OpenAIHTTPError(
                400,
                "A json_schema format needs a 'name' and a 'schema' object.",
                code=ErrorCode.INVALID_REQUEST,
                param="text.format",
            )
        schema = {k: fmt[k] for k in ("name", "schema", "description", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise unsupported(f"text.format type '{kind}' is not supported.", "text.format.type")


def function_tools(request: CreateResponseRequest) -> list[FunctionTool]:
    """The request's function tools.

    Raises:
        OpenAIHTTPError: 400 `unsupported_value` for a tool type OpenAI hosts.
    """
    tools: list[FunctionTool] = []
    for index, tool in enumerate(request.tools or []):
        if isinstance(tool, HostedTool):
            raise unsupported(
                f"Tool type '{tool.type}' is not supported: only function tools are, and "
                "the client runs them (the server's own tools are offered beside them).",
                f"tools[{index}].type",
            )
        tools.append(tool)
    return tools


def chat_tool_choice(request: CreateResponseRequest) -> str | dict[str, Any] | None:
    """`tool_choice` in the chat door's form (`{"type": "function", "function": {...}}`).

    Raises:
        OpenAIHTTPError: 400 for a choice that names no function tool of the request, or a
            kind of choice OpenAI's hosted tools need.
    """
    choice = request.tool_choice
    if choice is None or isinstance(choice, str):
        return choice
    if choice.get("type") != "function":
        raise unsupported(
            f"tool_choice type '{choice.get('type')}' is not supported.", "tool_choice.type"
        )
    name = choice.get("name")
    if name not in {tool.name for tool in function_tools(request)}:
        raise OpenAIHTTPError(
            400,
            f"tool_choice names '{name}', which is not a function in 'tools'.",
            code=ErrorCode.INVALID_REQUEST,
            param="tool_choice.name",
        )
    return {"type": "function", "function": {"name": name}}


def asked_reasoning(request: CreateResponseRequest) -> Reasoning:
    """The response's `reasoning`: the effort and summary the request asked for."""
    asked = request.reasoning
    if asked is None:
        return Reasoning()
    return Reasoning(effort=asked.effort, summary=asked.summary or asked.generate_summary)


def asked_text(request: CreateResponseRequest) -> dict[str, Any]:
    """The response's `text`: the format (plain text by default) and verbosity asked for."""
    text: dict[str, Any] = {"format": (request.text and request.text.format) or {"type": "text"}}
    if request.text is not None and request.text.verbosity is not None:
        text["verbosity"] = request.text.verbosity
    return text
