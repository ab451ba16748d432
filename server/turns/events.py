"""What a turn yields while it streams: text, reasoning, progress, then its end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from server.turns.result import TurnResult

__all__ = ["ProgressDelta", "ReasoningDelta", "StreamEvent", "TextDelta", "TurnDone"]


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
    """The end of a run, with its result."""

    result: TurnResult
    kind: Literal["done"] = "done"

    @property
    def output(self) -> dict[str, Any]:
        """The graph's output (`TurnResult.output`)."""
        return self.result.output


@dataclass(frozen=True)
class ProgressDelta:
    """A line about what the graph is doing (route, tool calls, fallbacks); optional."""

    text: str
    kind: Literal["progress"] = "progress"


StreamEvent = TextDelta | ReasoningDelta | ProgressDelta | TurnDone
