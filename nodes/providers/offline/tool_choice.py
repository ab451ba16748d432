"""Honouring a client's `tool_choice`: which tool to call, with schema-valid arguments."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage

from nodes.messages import message_text
from nodes.providers.offline.arguments import arguments_for
from nodes.providers.offline.rules import USE_TOOL, plan_tool_call

ToolOffer = str | Mapping[str, Any]
"""An offered tool: its name, or its OpenAI definition (`{"type": "function", "function": ...}`)."""

_ANY_TOOL = "*"
_STOP_WORDS = frozenset({"the", "and", "for", "with", "what", "how", "this", "that", "from", "are"})


def offered_tools(tools: Sequence[ToolOffer]) -> dict[str, Mapping[str, Any]]:
    """Offered tools by name, each with its OpenAI `function` object (empty for a bare name)."""
    table: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        if isinstance(tool, str):
            table[tool] = {}
            continue
        function = tool.get("function", tool)
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            table[function["name"]] = function
    return table


def _forced_name(tool_choice: object, offered: Mapping[str, Any]) -> str | None:
    """The tool `tool_choice` insists on, `_ANY_TOOL` for any tool, None for the model's pick."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        return name if isinstance(name, str) and name in offered else None
    if tool_choice in ("required", "any"):
        return _ANY_TOOL
    if isinstance(tool_choice, str) and tool_choice in offered:
        return tool_choice  # LangChain's spelling: the bare tool name
    return None


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.replace("_", " ").lower())
    return {word for word in words if len(word) > 2 and word not in _STOP_WORDS}


def _best_match(text: str, offered: Mapping[str, Mapping[str, Any]]) -> str:
    """The tool whose definition shares most words with the text (ties: the first).

    The definition is its name, description and parameters: property names and enum
    members ("terrace", "dinner") tell as much as the description does.
    """
    wanted = _words(text)

    def score(name: str) -> int:
        function = offered[name]
        described = f"{name} {function.get('description') or ''} "
        described += json.dumps(function.get("parameters") or {}, default=str)
        return len(wanted & _words(described))

    return max(offered, key=score)


def _fit(name: str, args: dict[str, Any], text: str, offered: Mapping[str, Any]) -> ToolCall:
    """A call of `name` whose arguments satisfy the tool's schema, when the schema is known."""
    named = USE_TOOL.match(text)
    source = named.group(2) if named and named.group(1) == name else text
    parameters = offered[name].get("parameters")
    if isinstance(parameters, Mapping):
        args = arguments_for(parameters, source, args)
    return ToolCall(name=name, args=args, id=None)


def choose_call(
    text: str, offered: Mapping[str, Mapping[str, Any]], tool_choice: object
) -> tuple[ToolCall | None, bool]:
    """The call for this user text, and whether `tool_choice` forced it."""
    forced = _forced_name(tool_choice, offered)
    if forced is None:
        plan = plan_tool_call(text, list(offered))
        return (_fit(*plan, text, offered) if plan else None), False
    candidates = list(offered) if forced == _ANY_TOOL else [forced]
    plan = plan_tool_call(text, candidates)
    if plan is not None:
        return _fit(*plan, text, offered), True
    name = _best_match(text, offered) if forced == _ANY_TOOL else forced
    return _fit(name, {}, text, offered), True


def forced_after_results(
    messages: Sequence[BaseMessage], offered: Mapping[str, Mapping[str, Any]], tool_choice: object
) -> ToolCall | None:
    """The call `tool_choice` still obliges after tool results, or None: answer from them.

    A forced tool not yet called since the user's message is called now (`required`: the
    one whose definition best matches the results), its arguments read from the results and
    the user's text; pydantic-ai's output tool after a function tool's result is one. Once
    each candidate has been called the model answers: forcing again would loop until the
    tool budget runs out.
    """
    forced = _forced_name(tool_choice, offered)
    if forced is None:
        return None
    called: set[str] = set()
    texts: list[str] = []
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            texts.append(message_text(message))
            break
        if isinstance(message, AIMessage):
            called.update(call["name"] for call in message.tool_calls)
        elif isinstance(message, ToolMessage):
            texts.append(message_text(message))
    candidates = list(offered) if forced == _ANY_TOOL else [forced]
    left = {name: offered[name] for name in candidates if name not in called}
    if not left:
        return None
    text = "\n".join(reversed(texts))
    return _fit(_best_match(text, left), {}, text, offered)
