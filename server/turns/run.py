"""Running a prepared run to its end, or streaming it: the part of a turn every door shares.

The kit (`server.turns.kit.Turn`) prepares the run (`server.turns.prepare`), then either
awaits `complete` for the graph's output or iterates `stream` for the text and reasoning as
the provider produces them, ending with `TurnDone` and the turn's `TurnResult`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any, cast

import psycopg
from langchain_core.messages import AIMessage, AIMessageChunk
from langgraph.types import StreamMode

from graph.routing import STREAMED_NODES
from graph.state import Usage
from nodes.messages import clean_text, content_text
from nodes.providers.reasoning import reasoning_text
from server.refusals import outcome_of, store_refusal
from server.turns.events import ProgressDelta, ReasoningDelta, StreamEvent, TextDelta, TurnDone
from server.turns.prepare import PreparedRun
from server.turns.progress import progress_lines
from server.turns.result import (
    REASONING_SEPARATOR,
    TurnResult,
    pending_tool_calls,
)

_MODES: list[StreamMode] = ["messages", "values"]
_MODES_WITH_PROGRESS: list[StreamMode] = ["messages", "values", "updates"]


def _graph_stream(run: PreparedRun, modes: StreamMode | list[StreamMode]) -> AsyncGenerator[Any]:
    """The graph's own stream of the run, in `modes`."""
    return cast(
        AsyncGenerator[Any, None],
        run.graph.astream(
            run.input, run.config, context=run.context, stream_mode=modes, durability=run.durability
        ),
    )


class _Outcome:
    """How a turn ended, as `counted` learns it."""

    value: str | None = None


@contextlib.contextmanager
def counted(ended: Callable[[str], None] | None) -> Iterator[_Outcome]:
    """Tell `ended` once how the block ended; a store that went away becomes a refusal.

    The block sets `ok` or `paused` itself; an exception is `error`, a client that left
    (cancellation, the generator closed) `cancelled`.

    Raises:
        Refused: `checkpointer_unavailable` for a store lost mid-turn.
    """
    outcome = _Outcome()
    try:
        yield outcome
    except psycopg.OperationalError as error:
        outcome.value = "error"
        raise store_refusal(error) from error
    except BaseException as error:
        outcome.value = outcome.value or outcome_of(error)
        raise
    finally:
        if ended is not None:
            ended(outcome.value or "cancelled")


def usage_minus(usage: Usage | None, before: Usage | None) -> Usage | None:
    """This turn's usage when a resumed run's total includes what was already reported."""
    if usage is None or before is None:
        return usage
    return Usage(
        input_tokens=usage["input_tokens"] - before["input_tokens"],
        output_tokens=usage["output_tokens"] - before["output_tokens"],
        total_tokens=usage["total_tokens"] - before["total_tokens"],
    )


def settle(run: PreparedRun, output: dict[str, Any]) -> dict[str, Any]:
    """The output as a door reports it: this turn's usage, `finish_reason` on a pause."""
    if run.usage_before is not None:
        output["usage"] = usage_minus(output.get("usage"), run.usage_before)
    if pending_tool_calls(output):
        output["finish_reason"] = "tool_calls"
    return output


async def complete(run: PreparedRun) -> dict[str, Any]:
    """Run to the end (or to a pause for client tools) and return the graph's output."""
    if run.replay is not None:
        return run.replay
    output = dict(
        await run.graph.ainvoke(
            run.input, run.config, context=run.context, durability=run.durability
        )
    )
    return settle(run, output)


async def finished(
    run: PreparedRun,
    *,
    show_reasoning: bool = True,
    ended: Callable[[str], None] | None = None,
    finish: Callable[[TurnResult], Awaitable[TurnResult]] | None = None,
) -> TurnResult:
    """Run to the end (or to a pause for client tools); the turn's result.

    `show_reasoning`, `ended` and `finish` as in `stream`.

    Raises:
        Refused: `checkpointer_unavailable` when the store went away mid-turn.
    """
    with counted(ended) as outcome:
        result = TurnResult.of(await complete(run), show_reasoning=show_reasoning)
        if finish is not None:
            result = await finish(result)
        outcome.value = "paused" if result.tool_calls else "ok"
        return result


async def stream(
    run: PreparedRun,
    *,
    show_reasoning: bool = True,
    progress: bool = False,
    ended: Callable[[str], None] | None = None,
    finish: Callable[[TurnResult], Awaitable[TurnResult]] | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """Run, yielding reasoning and answer text as the provider produces them, then the result.

    One generator from the graph's stream to the door (each layer between would cost every
    event of every stream a hop): the turn's outcome and its last touches are hooks.

    Args:
        run: The prepared run.
        show_reasoning: Yield `ReasoningDelta`s (SHOW_REASONING; the thread keeps it either way).
        progress: Yield `ProgressDelta`s about the graph's steps (PROGRESS_EVENTS).
        ended: Told how the turn ended, once: `ok`, `paused`, `error` or `cancelled`.
        finish: Completes the result before it is yielded (the checkpoint it ended on).

    Raises:
        Refused: `checkpointer_unavailable` when the store went away mid-turn.
    """
    with counted(ended) as outcome:
        if run.replay is not None:
            result = TurnResult.of(run.replay, show_reasoning=show_reasoning)
            if result.reasoning:
                yield ReasoningDelta(result.reasoning)
            if result.text:
                yield TextDelta(result.text)
        else:
            output: dict[str, Any] = {}
            reasoned: str | None = None  # the id of the last message whose reasoning was sent
            modes = _MODES_WITH_PROGRESS if progress else _MODES
            parts = _graph_stream(run, modes)
            # Closed explicitly: a client that leaves must cancel the run and its provider call.
            async with contextlib.aclosing(parts):
                async for part in parts:
                    mode, payload = cast(tuple[str, Any], part)
                    if mode == "values":
                        output = dict(payload)
                        continue
                    if mode == "updates":
                        for line in progress_lines(payload):
                            yield ProgressDelta(line)
                        continue
                    message, metadata = payload
                    if metadata.get("langgraph_node") not in STREAMED_NODES:
                        continue
                    if isinstance(message, AIMessageChunk | AIMessage):
                        reasoning = reasoning_text(message) if show_reasoning else ""
                        if reasoning:
                            if reasoned is not None and reasoned != message.id:
                                reasoning = REASONING_SEPARATOR + reasoning  # a new model call
                            reasoned = message.id
                            yield ReasoningDelta(clean_text(reasoning))
                        text = content_text(message.content)
                        if text:
                            yield TextDelta(text)
            result = TurnResult.of(settle(run, output), show_reasoning=show_reasoning)
        if finish is not None:
            result = await finish(result)
        outcome.value = "paused" if result.tool_calls else "ok"
        yield TurnDone(result)


async def updates(
    run: PreparedRun, *, ended: Callable[[str], None] | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """Run, yielding one `{node: update}` per step (LangGraph's `updates` stream mode).

    `ended` as in `stream`.

    Raises:
        Refused: `checkpointer_unavailable` when the store went away mid-turn.
    """
    with counted(ended) as outcome:
        parts = _graph_stream(run, "updates")
        async with contextlib.aclosing(parts):
            async for update in parts:
                yield cast(dict[str, Any], update)
        outcome.value = "ok"
