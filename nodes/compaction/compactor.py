"""Compaction: fit a thread's prompt into a budget by summarising (or dropping) old turns.

Given the thread, its current summary and a budget, `compact` returns the summary to keep
in the state and what it did. Nothing here calls a provider: the model that summarises is
handed in (`Summariser`), so the same logic serves the compact node and the
fallback_provider's retry after a context-length error, and unit tests drive it with a
scripted function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from langchain_core.messages import BaseMessage, SystemMessage

from graph.prompts import SUMMARY_PROMPT
from graph.state import Compacted, CompactionHow, Summary
from nodes.compaction.budget import summary_allowance
from nodes.compaction.clip import clip
from nodes.compaction.cut import chunks, keep_from
from nodes.compaction.prompt import SUMMARY_HEADING, Split, assemble, split
from nodes.compaction.summary import summary_request
from nodes.compaction.tokens import MESSAGE_OVERHEAD, TokenCounter, text_tokens

KEEP_SHARE: Final = 0.5
"""Of the room left for verbatim messages, what a compaction keeps: the rest is headroom
for the turns to come, so a full thread is compacted every few turns, not on every one."""
MAX_FOLDS: Final = 8
"""Summary calls one compaction may make; older pieces beyond them are dropped."""
_NOTE_TOKENS: Final = text_tokens(SUMMARY_HEADING) + MESSAGE_OVERHEAD + 20


class SummaryFailedError(Exception):
    """The summarising model gave no summary (every provider of its chain failed)."""


class Summariser(Protocol):
    """A model that summarises: `prompt` in, the summary's text out."""

    @property
    def budget(self) -> int:
        """Prompt tokens its model takes (its window less answer and margin)."""
        ...

    async def __call__(self, prompt: list[BaseMessage], max_tokens: int) -> str:
        """The model's answer to `prompt`, at most `max_tokens` long.

        Raises:
            SummaryFailedError: No provider answered.
        """
        ...


@dataclass(frozen=True)
class Outcome:
    """What a compaction decided."""

    summary: Summary | None
    """The summary to keep in the state (the old one when nothing was done)."""
    compacted: Compacted | None
    """What was done; None when the prompt already fitted."""
    estimate: int
    """Estimated tokens of the prompt that will be sent (tools included, not scaled)."""
    clipped: dict[str, int] = field(default_factory=dict)
    """Tool results to send cut short (`clip.py`): id -> characters kept."""


@dataclass(frozen=True)
class Request:
    """What to compact and to which budget."""

    messages: Sequence[BaseMessage]
    summary: Summary | None
    budget: int
    """Prompt tokens allowed, in the provider's terms."""
    scale: float = 1.0
    """The provider counts this many tokens per estimated one (`tokens.calibrated`)."""
    extra: int = 0
    """Estimated tokens sent beside the messages (tool schemas)."""
    default_system: str = ""
    instructions: str | None = None
    """The run's own system prompt (`Context.instructions`), sent in place of the default."""


async def compact(request: Request, counter: TokenCounter, summarise: Summariser | None) -> Outcome:
    """Fit the prompt of `request.messages` into the budget, if it does not fit already.

    Over it, the oldest whole turns after the current summary go: summarised into a new
    summary that builds on the old one, or, when summarising fails (or there is no
    summariser), dropped. The latest turn always stays, and at least half the room is
    left for the turns to come; when it alone is over, its longest tool results are cut.
    """
    view = split(request.messages, request.summary)
    effective = int(request.budget / max(request.scale, 1.0))

    def estimate(of: Split) -> int:
        prompt = assemble(of, request.default_system, request.instructions)
        return counter.messages(prompt) + request.extra

    before = estimate(view)
    if before <= effective:
        return Outcome(summary=view.summary, compacted=None, estimate=before)
    allowance = summary_allowance(effective)
    # The system prompts stay whatever is cut (those in the tail too: counted high).
    systems = [*view.head, *(m for m in view.tail if isinstance(m, SystemMessage))]
    base = estimate(Split(head=systems, tail=[], summary=None))
    room = effective - base - allowance - _NOTE_TOKENS
    cut = keep_from(view.tail, counter.message, int(room * KEEP_SHARE))
    if cut == 0:
        kept = clip(view.tail, counter.message, before - effective)
        after = estimate(Split(head=view.head, tail=view.tail, summary=view.summary, clipped=kept))
        how: CompactionHow = "clip" if kept and after <= effective else "failed"
        record = Compacted(how=how, before=before, after=after, budget=effective)
        return Outcome(summary=view.summary, compacted=record, estimate=after, clipped=kept)
    dropped = [m for m in view.tail[:cut] if not isinstance(m, SystemMessage)]
    through = view.tail[cut - 1].id
    if through is None:
        raise ValueError("compaction needs message ids (the thread's messages always have one)")
    previous = view.summary
    covered = (previous["messages"] if previous else 0) + len(dropped)
    lost = previous["dropped"] if previous else 0
    text = previous["text"] if previous else ""
    how = "summary"
    try:
        if summarise is None:
            raise SummaryFailedError("no model to summarise with")
        text, unsummarised = await _fold(text, dropped, counter, summarise, allowance)
        lost += unsummarised
    except SummaryFailedError:
        how, lost = "trim", lost + len(dropped)
    summary = Summary(text=text, through=through, messages=covered, dropped=lost)
    tail = view.tail[cut:]
    after = estimate(Split(head=view.head, tail=tail, summary=summary))
    kept = {}
    if after > effective:  # the latest turn alone is over: its tool output is cut too
        kept = clip(tail, counter.message, after - effective)
        after = estimate(Split(head=view.head, tail=tail, summary=summary, clipped=kept))
    record = Compacted(how=how, before=before, after=after, budget=effective)
    return Outcome(summary=summary, compacted=record, estimate=after, clipped=kept)


async def _fold(
    text: str,
    messages: Sequence[BaseMessage],
    counter: TokenCounter,
    summarise: Summariser,
    allowance: int,
) -> tuple[str, int]:
    """`text` with `messages` summarised into it, a model call per piece that fits.

    Returns the new text and how many of the oldest messages were dropped unsummarised
    (past `MAX_FOLDS` pieces).
    """
    room = max(1, summarise.budget - allowance - text_tokens(SUMMARY_PROMPT) - 2 * _NOTE_TOKENS)
    pieces = chunks(messages, counter.message, room)
    skipped = pieces[:-MAX_FOLDS]
    for piece in pieces[-MAX_FOLDS:]:
        text = (await summarise(summary_request(text, piece, room), allowance)).strip()
    return text, sum(len(piece) for piece in skipped)
