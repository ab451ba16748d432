"""The prompt sent for a thread: system prompt(s), the summary, then the recent messages.

The thread keeps every message; what a summary stands for is only left out of what is sent.
`split` finds where the summary ends in the thread, `sent_prompt` assembles the prompt from
the thread and the state's summary (`fallback_provider` sends exactly that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, SystemMessage

from graph.state import Summary
from nodes.compaction.clip import clipped

SUMMARY_HEADING = "Summary of the earlier part of this conversation (those messages are not shown):"


@dataclass(frozen=True)
class Split:
    """A thread seen through its summary."""

    head: list[BaseMessage]
    """System messages among those the summary stands for: they are always sent."""
    tail: list[BaseMessage]
    """The messages after the summary, sent verbatim."""
    summary: Summary | None
    """The summary, or None when there is none or it does not belong to these messages."""
    clipped: Mapping[str, int] = field(default_factory=dict)
    """Tool results of the tail sent cut short: id -> characters kept (`clip.py`)."""


def split(
    messages: Sequence[BaseMessage],
    summary: Summary | None,
    clipped: Mapping[str, int] | None = None,
) -> Split:
    """Where `summary` ends in `messages`.

    A summary whose last message is not in the thread (removed messages) is ignored: the
    whole thread is then verbatim, and compaction starts again from it.
    """
    if summary is not None:
        through = summary["through"]
        for index in range(len(messages) - 1, -1, -1):
            if messages[index].id == through:
                covered = messages[: index + 1]
                head: list[BaseMessage] = [m for m in covered if isinstance(m, SystemMessage)]
                tail = list(messages[index + 1 :])
                return Split(head=head, tail=tail, summary=summary, clipped=clipped or {})
    return Split(head=[], tail=list(messages), summary=None, clipped=clipped or {})


def summary_message(summary: Summary) -> SystemMessage | None:
    """The system message that carries a summary, or None when it says nothing."""
    lines: list[str] = []
    if summary["text"].strip():
        lines += [SUMMARY_HEADING, summary["text"].strip()]
    if summary["dropped"]:
        lines.append(f"({summary['dropped']} earlier messages were left out to fit the context.)")
    return SystemMessage(content="\n".join(lines)) if lines else None


def assemble(
    view: Split, default_system: str, instructions: str | None = None
) -> list[BaseMessage]:
    """The prompt of a split thread: system prompt(s), the summary, the verbatim tail.

    Without a system message of the client's, `default_system` leads, as it always has.
    `instructions` (the run's own system prompt, `Context.instructions`) lead instead of the
    default, before the thread's own system messages; they are never part of the thread.
    """
    lead: list[BaseMessage] = list(view.head)
    note = summary_message(view.summary) if view.summary is not None else None
    if note is not None:
        lead.append(note)
    has_system = bool(view.head) or any(isinstance(m, SystemMessage) for m in view.tail)
    if instructions:
        lead.insert(0, SystemMessage(content=instructions))
    elif not has_system:
        lead.insert(0, SystemMessage(content=default_system))
    return [*lead, *clipped(view.tail, view.clipped)]


def sent_prompt(
    messages: Sequence[BaseMessage],
    summary: Summary | None,
    default_system: str,
    clipped: Mapping[str, int] | None = None,
    instructions: str | None = None,
) -> list[BaseMessage]:
    """What is sent for `messages` with the state's `summary` (and `clipped` tool results)."""
    return assemble(split(messages, summary, clipped), default_system, instructions)
