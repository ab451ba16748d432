"""One thread as a timeline: its checkpoints oldest first, what each added, and its branches.

A thread's checkpoints form a tree by their parent ids: a turn run from an earlier
checkpoint (a fork: `configurable.checkpoint_id` on `/agent`, an edited history on `/v1`)
gives that checkpoint a second child. The timeline is that tree as branches: a branch is a
chain of checkpoints, each the only child of the one before; it ends at the latest
checkpoint of the branch, or at a fork point, whose children each start a branch of their
own (labelled `1.1`, `1.2`, ... under branch `1`, oldest first).

Each checkpoint shows what changed since its parent: the messages it added (user and
assistant text, tool calls with their arguments, tool results), and the facts of the turn
when they changed (provider attempts with their error classes, tokens, the route, the
tools offered, a compaction and the summary). Thread contents are untrusted text and may be
large: every text is cut at `TEXT_LIMIT` characters and carries its full length.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from nodes.messages import message_text
from server.stores.thread_list import checkpoint_time
from server.turns.history import HistoryCheckpoint, messages_of, values_of

__all__ = [
    "TEXT_LIMIT",
    "TURN_FIELDS",
    "AttemptView",
    "Branch",
    "CheckpointView",
    "Clipped",
    "MessageView",
    "Timeline",
    "ToolCallView",
    "build_timeline",
    "clip",
]

TEXT_LIMIT: Final = 4000
"""Characters of one message, tool argument list or summary shown; the rest is cut."""

TURN_FIELDS: Final = (
    "route",
    "route_reason",
    "provider",
    "tools_offered",
    "client_tools_offered",
    "tool_rounds",
    "finish_reason",
)
"""Per-turn state fields shown, when they changed, as `name: value`."""


@dataclass(frozen=True)
class Clipped:
    """A text, cut at a limit; `length` is the whole text's."""

    text: str
    length: int

    @property
    def clipped(self) -> bool:
        """True when `text` is only the start of it."""
        return len(self.text) < self.length


def clip(text: str, limit: int = TEXT_LIMIT) -> Clipped:
    """The first `limit` characters of `text`, and how long it is."""
    return Clipped(text[:limit], len(text))


@dataclass(frozen=True)
class ToolCallView:
    """A tool call an assistant message asks for."""

    id: str
    name: str
    arguments: Clipped
    """The arguments as JSON."""


@dataclass(frozen=True)
class MessageView:
    """One message as shown."""

    type: str
    """`human`, `ai`, `tool`, `system`."""
    id: str | None
    text: Clipped
    tool_calls: list[ToolCallView] = field(default_factory=list)
    name: str | None = None
    """The tool of a tool result."""
    tool_call_id: str | None = None
    status: str | None = None
    """A tool result's status (`error` when the tool failed)."""
    reasoning: Clipped | None = None


@dataclass(frozen=True)
class AttemptView:
    """One provider call (or skip) of a turn."""

    provider: str
    outcome: str
    error: str | None
    """The error class of a failure (`cooldown` for a skip)."""
    detail: Clipped | None
    duration_ms: float | None


@dataclass
class CheckpointView:
    """One checkpoint: where it sits, who wrote it, and what changed since its parent."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    step: int | None
    source: str | None
    written_by: list[str]
    next: list[str]
    created_at: str | None
    messages: int
    """Messages of the thread at this checkpoint."""
    added: list[MessageView]
    """Messages new (or rewritten) since the parent."""
    removed: int
    """Messages of the parent no longer in the thread here."""
    parent_shown: bool
    """False when the parent is older than the checkpoints read: `added` is then empty."""
    turn: dict[str, str]
    """`TURN_FIELDS` that changed since the parent, as text."""
    attempts: list[AttemptView] | None
    """The turn's provider attempts, when they changed."""
    usage: dict[str, int] | None
    """The turn's tokens, when they changed."""
    compacted: dict[str, Any] | None
    """The turn's compaction (`how`, `before`, `after`, `budget`), when it changed."""
    summary: Clipped | None
    """The summary standing for the oldest messages, when it changed."""
    summary_covers: int | None
    children: int = 0
    latest: bool = False
    """The thread's newest checkpoint (what the next turn continues)."""


@dataclass
class Branch:
    """A chain of checkpoints; at its end, when it forks, the branches that start there."""

    label: str
    checkpoints: list[CheckpointView]
    forks: list[Branch] = field(default_factory=list)

    @property
    def fork_point(self) -> CheckpointView | None:
        """The checkpoint the branches of `forks` grow from."""
        return self.checkpoints[-1] if self.forks else None

    def walk(self) -> list[Branch]:
        """This branch and every branch under it, depth first."""
        found = [self]
        for fork in self.forks:
            found.extend(fork.walk())
        return found


@dataclass
class Timeline:
    """A thread's checkpoints as branches (more than one root when the oldest were not read)."""

    roots: list[Branch]
    checkpoints: int
    complete: bool
    """False when the thread has more checkpoints than were read (the oldest are missing)."""

    def branches(self) -> list[Branch]:
        """Every branch, depth first."""
        return [branch for root in self.roots for branch in root.walk()]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def message_view(message: BaseMessage) -> MessageView:
    """A message as shown: its text, tool calls with their arguments, a tool's name/status."""
    calls = [
        ToolCallView(str(call.get("id") or ""), call["name"], clip(_json(call.get("args", {}))))
        for call in (message.tool_calls if isinstance(message, AIMessage) else [])
    ]
    reasoning = message.additional_kwargs.get("reasoning_content")
    return MessageView(
        type=message.type,
        id=message.id,
        text=clip(message_text(message)),
        tool_calls=calls,
        name=message.name,
        tool_call_id=message.tool_call_id if isinstance(message, ToolMessage) else None,
        status=message.status if isinstance(message, ToolMessage) else None,
        reasoning=clip(reasoning) if isinstance(reasoning, str) and reasoning else None,
    )


def _added(
    messages: Sequence[BaseMessage], before: Sequence[BaseMessage]
) -> tuple[list[MessageView], int]:
    """Messages new or rewritten since `before`, and how many of `before` are gone."""
    earlier = {m.id: m for m in before if m.id}
    present = {m.id for m in messages if m.id}
    added = [message_view(m) for m in messages if not m.id or earlier.get(m.id) != m]
    return added, sum(1 for key in earlier if key not in present)


def _changed(values: Mapping[str, Any], parent: Mapping[str, Any] | None, key: str) -> Any:
    """`values[key]` when it is set and differs from the parent's, else None."""
    value = values.get(key)
    if value in (None, [], {}, ""):
        return None
    if parent is not None and parent.get(key) == value:
        return None
    return value


def _attempts(raw: Any) -> list[AttemptView] | None:
    if not isinstance(raw, list):
        return None
    return [
        AttemptView(
            provider=str(a.get("provider", "")),
            outcome=str(a.get("outcome", "")),
            error=a.get("error"),
            detail=clip(str(a["detail"]), 500) if a.get("detail") else None,
            duration_ms=a.get("duration_ms"),
        )
        for a in raw
        if isinstance(a, Mapping)
    ]


def _turn_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _view(
    checkpoint: HistoryCheckpoint, parent: HistoryCheckpoint | None, children: int
) -> CheckpointView:
    snapshot = checkpoint.snapshot
    values = values_of(snapshot)
    before = values_of(parent.snapshot) if parent is not None else None
    parent_shown = parent is not None or checkpoint.parent_checkpoint_id is None
    if parent_shown:
        added, removed = _added(
            messages_of(snapshot), messages_of(parent.snapshot) if parent else []
        )
    else:
        added, removed = [], 0
    summary = _changed(values, before, "summary")
    changed_fields = {key: _changed(values, before, key) for key in TURN_FIELDS}
    return CheckpointView(
        checkpoint_id=checkpoint.checkpoint_id,
        parent_checkpoint_id=checkpoint.parent_checkpoint_id,
        step=checkpoint.step,
        source=checkpoint.source,
        written_by=checkpoint.written_by,
        next=list(snapshot.next),
        created_at=snapshot.created_at,
        messages=len(messages_of(snapshot)),
        added=added,
        removed=removed,
        parent_shown=parent_shown,
        turn={k: _turn_text(v) for k, v in changed_fields.items() if v is not None},
        attempts=_attempts(_changed(values, before, "attempts")),
        usage=_changed(values, before, "usage"),
        compacted=_changed(values, before, "compacted"),
        summary=clip(str(summary.get("text", ""))) if isinstance(summary, Mapping) else None,
        summary_covers=summary.get("messages") if isinstance(summary, Mapping) else None,
        children=children,
    )


def build_timeline(history: Sequence[HistoryCheckpoint], *, complete: bool = True) -> Timeline:
    """The branches of a thread from its checkpoints (any order, e.g. `read_history`'s).

    Args:
        history: The checkpoints read.
        complete: False when the thread has older checkpoints than these.
    """
    by_id = {c.checkpoint_id: c for c in history}
    children: dict[str, list[HistoryCheckpoint]] = {}
    roots: list[HistoryCheckpoint] = []
    for checkpoint in sorted(history, key=lambda c: c.checkpoint_id):
        parent = checkpoint.parent_checkpoint_id
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append(checkpoint)
        else:
            roots.append(checkpoint)
    latest = max(by_id, default=None)

    def view(checkpoint: HistoryCheckpoint) -> CheckpointView:
        parent = by_id.get(checkpoint.parent_checkpoint_id or "")
        shown = _view(checkpoint, parent, len(children.get(checkpoint.checkpoint_id, [])))
        shown.latest = checkpoint.checkpoint_id == latest
        return shown

    def branch(start: HistoryCheckpoint, label: str) -> Branch:
        chain = [view(start)]
        following = children.get(start.checkpoint_id, [])
        while len(following) == 1:
            chain.append(view(following[0]))
            following = children.get(following[0].checkpoint_id, [])
        forks = [branch(child, f"{label}.{n}") for n, child in enumerate(following, 1)]
        return Branch(label, chain, forks)

    return Timeline(
        roots=[branch(root, str(n)) for n, root in enumerate(roots, 1)],
        checkpoints=len(history),
        complete=complete,
    )


def updated_text(checkpoint_id: str) -> str:
    """When a checkpoint was written, for a page (UTC, to the second)."""
    moment = checkpoint_time(checkpoint_id)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""
