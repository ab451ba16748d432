"""What a run yields while it streams, and what a door reads from a run's output (every door)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolCall

from nodes.messages import content_text, is_client_message
from nodes.providers.reasoning import reasoning_text


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text, as produced."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning, as produced (sent as `reasoning_content`)."""

    text: str
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True)
class TurnDone:
    """The end of a run, with the graph's output."""

    output: dict[str, Any]
    kind: Literal["done"] = "done"


@dataclass(frozen=True)
class ProgressDelta:
    """A line about what the graph is doing (route, tool calls, fallbacks); optional."""

    text: str
    kind: Literal["progress"] = "progress"


StreamEvent = TextDelta | ReasoningDelta | ProgressDelta | TurnDone


def run_messages(output: dict[str, Any]) -> list[AIMessage]:
    """The AI messages this run added: those after the last message the client sent."""
    messages: list[BaseMessage] = output.get("messages", [])
    start = 0
    for index in range(len(messages) - 1, -1, -1):
        if is_client_message(messages[index]):
            start = index + 1
            break
    return [m for m in messages[start:] if isinstance(m, AIMessage)]


def final_text(output: dict[str, Any]) -> str:
    """The answer's text as the client sees it: every AI message of the run, joined."""
    return "".join(content_text(m.content) for m in run_messages(output))


REASONING_SEPARATOR = "\n\n"
"""Between the reasoning of two model calls of one run (before and after a tool round)."""


def final_reasoning(output: dict[str, Any]) -> str | None:
    """The reasoning of every AI message of the run, joined; None when there was none.

    None rather than "": a completion without reasoning has no `reasoning_content` field.
    """
    parts = [text for m in run_messages(output) if (text := reasoning_text(m))]
    return REASONING_SEPARATOR.join(parts) or None


def pending_tool_calls(output: dict[str, Any]) -> list[ToolCall]:
    """The client tool calls a paused run waits for (empty when the run finished)."""
    calls: list[ToolCall] = []
    for pause in output.get("__interrupt__", ()):
        value = getattr(pause, "value", None)
        if isinstance(value, dict):
            calls.extend(value.get("tool_calls", []))
    return calls
