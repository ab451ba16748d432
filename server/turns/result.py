"""What a turn ends with, computed once from the graph's output: `TurnResult`.

Every door shows the same facts of a turn (its text, reasoning, pending client tool calls,
usage, finish reason, the provider that answered): they are read from the graph's output here,
once, and a door only puts them in its own shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolCall

from graph.state import Usage
from nodes.messages import content_text, is_client_message
from nodes.providers.reasoning import reasoning_text

__all__ = [
    "REASONING_SEPARATOR",
    "TurnResult",
    "final_reasoning",
    "final_text",
    "pending_tool_calls",
    "run_messages",
]


@dataclass(frozen=True)
class TurnResult:
    """One turn's outcome, typed; each fact read from the output once, when first asked for.

    Attributes:
        output: The graph's output as it ran (`graph.state.OutputState`): for a door that
            shows the whole state (`/agent`).
        show_reasoning: SHOW_REASONING: whether `reasoning` is shown at all.
        checkpoint_id: The checkpoint the turn ended on, when the door asked for it
            (`TurnRequest.wants_checkpoint`); None for a stateless turn.
    """

    output: dict[str, Any]
    show_reasoning: bool = True
    checkpoint_id: str | None = None

    @classmethod
    def of(
        cls,
        output: dict[str, Any],
        *,
        show_reasoning: bool = True,
        checkpoint_id: str | None = None,
    ) -> TurnResult:
        """The result of a graph's output (already settled: this turn's usage, its pause)."""
        return cls(output, show_reasoning, checkpoint_id)

    @cached_property
    def text(self) -> str:
        """The answer's text: every AI message of the run, joined."""
        return final_text(self.output)

    @cached_property
    def reasoning(self) -> str | None:
        """The model's reasoning; None when there was none or SHOW_REASONING is off."""
        return final_reasoning(self.output) if self.show_reasoning else None

    @cached_property
    def tool_calls(self) -> list[ToolCall]:
        """The client tool calls the run paused on (empty when it finished)."""
        return pending_tool_calls(self.output)

    @property
    def usage(self) -> Usage | None:
        """This turn's tokens (a resumed run reports only what it added)."""
        usage: Usage | None = self.output.get("usage")
        return usage

    @property
    def finish_reason(self) -> str:
        """`stop`, `length`, or `tool_calls` on a pause."""
        return str(self.output.get("finish_reason") or "stop")

    @property
    def provider(self) -> str | None:
        """The provider endpoint that gave the last answer."""
        provider = self.output.get("provider")
        return provider if isinstance(provider, str) else None


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
