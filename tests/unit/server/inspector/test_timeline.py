"""The inspector's timeline: a real thread's checkpoints as branches, and what each added."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from server.inspector.timeline import (
    TEXT_LIMIT,
    Branch,
    CheckpointView,
    build_timeline,
    clip,
    message_view,
)
from server.turns.history import HistoryCheckpoint, read_history
from server.turns.prepare import prepare_run
from server.turns.request import run_context
from server.turns.threads import ThreadRef
from tests.unit.server.kit import Chat, MakeChat

THREAD = ThreadRef("t", "key:t", delta=True)
ARITHMETIC = ("user", "what is 17*23")


def saver_of(chat: Chat) -> BaseCheckpointSaver[Any]:
    checkpointer = chat.graph.checkpointer
    assert isinstance(checkpointer, BaseCheckpointSaver)
    return checkpointer


async def timeline_of(chat: Chat, limit: int = 100) -> tuple[list[Branch], bool]:
    history = await read_history(chat.graph, saver_of(chat), THREAD.stored_id, limit=limit)
    timeline = build_timeline(history, complete=True)
    return timeline.branches(), timeline.complete


async def run_from(chat: Chat, checkpoint_id: str, text: str) -> None:
    """A turn from an earlier checkpoint, as the /agent door runs it (a branch)."""
    run = await prepare_run(
        chat.graph,
        [HumanMessage(text)],
        THREAD,
        run_context(chat.settings),
        checkpoint_id=checkpoint_id,
    )
    await run.graph.ainvoke(run.input, run.config, context=run.context, durability="sync")


def texts(checkpoint: CheckpointView) -> list[tuple[str, str]]:
    return [(m.type, m.text.text) for m in checkpoint.added]


def branch_texts(branch: Branch) -> list[tuple[str, str]]:
    return [text for checkpoint in branch.checkpoints for text in texts(checkpoint)]


async def test_a_fork_shows_both_branches_from_the_fork_point(chat: Chat) -> None:
    await chat.turn(THREAD, ARITHMETIC)
    (first_turn,) = await read_history(chat.graph, saver_of(chat), THREAD.stored_id, limit=1)
    await chat.turn(THREAD, ("user", "echo one"))
    await run_from(chat, first_turn.checkpoint_id, "echo two")

    branches, _ = await timeline_of(chat)

    trunk, first, second = branches
    assert [b.label for b in branches] == ["1", "1.1", "1.2"]
    fork = trunk.fork_point
    assert fork is not None
    assert fork.children == 2
    assert [c.parent_checkpoint_id for c in first.checkpoints[:1] + second.checkpoints[:1]] == [
        fork.checkpoint_id,
        fork.checkpoint_id,
    ]
    # Each branch shows only what it added after the fork, step by step on the second.
    assert branch_texts(first) == [
        ("human", "echo one"),
        ("ai", ""),
        ("tool", "one"),
        ("ai", "one"),
    ]
    assert branch_texts(second) == [
        ("human", "echo two"),
        ("ai", ""),
        ("tool", "two"),
        ("ai", "two"),
    ]
    assert second.checkpoints[0].written_by == ["__input__"]
    assert ["tools"] in [c.written_by for c in second.checkpoints]
    assert second.checkpoints[-1].latest
    assert not first.checkpoints[-1].latest


async def test_the_first_turn_shows_the_tool_call_its_result_and_the_turn(chat: Chat) -> None:
    await chat.turn(THREAD, ARITHMETIC)

    (trunk,) = (await timeline_of(chat))[0]
    (turn,) = trunk.checkpoints

    assert [m.type for m in turn.added] == ["human", "ai", "tool", "ai"]
    call = turn.added[1].tool_calls[0]
    assert call.name == "calculator"
    assert call.arguments.text == '{"expression": "17*23"}'
    assert (turn.added[2].name, turn.added[2].text.text) == ("calculator", "391")
    assert {"router", "fallback_provider", "tools", "respond"} <= set(turn.written_by)
    assert turn.turn["route"] == "model"
    assert turn.attempts is not None
    assert [(a.provider, a.outcome, a.error) for a in turn.attempts] == [
        ("offline", "ok", None),
        ("offline", "ok", None),
    ]
    assert turn.usage is not None
    assert turn.usage["total_tokens"] > 0


async def test_every_step_is_a_checkpoint_written_by_its_node(make_chat: MakeChat) -> None:
    chat = make_chat(checkpoint_durability="sync")
    await chat.turn(THREAD, ARITHMETIC)

    (trunk,) = (await timeline_of(chat))[0]

    writers = [c.written_by for c in trunk.checkpoints]
    assert writers[0] == ["__input__"]
    assert ["tools"] in writers
    tools_step = trunk.checkpoints[writers.index(["tools"])]
    assert [(m.type, m.text.text) for m in tools_step.added] == [("tool", "391")]
    # The turn's facts are shown where they changed, not repeated on every step.
    shown_route = [c for c in trunk.checkpoints if "route" in c.turn]
    assert len(shown_route) == 1


async def test_a_limited_history_starts_where_it_was_cut(make_chat: MakeChat) -> None:
    chat = make_chat(checkpoint_durability="sync")
    await chat.turn(THREAD, ARITHMETIC)

    (trunk,) = (await timeline_of(chat, limit=3))[0]

    assert len(trunk.checkpoints) == 3
    assert not trunk.checkpoints[0].parent_shown
    assert trunk.checkpoints[0].added == []


def test_long_text_is_cut_with_its_length() -> None:
    long = "x" * (TEXT_LIMIT + 10)

    shown = message_view(ToolMessage(long, tool_call_id="c1", name="echo", status="error"))

    assert shown.text.clipped
    assert shown.text.length == TEXT_LIMIT + 10
    assert len(shown.text.text) == TEXT_LIMIT
    assert (shown.status, shown.tool_call_id) == ("error", "c1")
    assert not clip("short").clipped


def test_a_message_with_reasoning_and_content_blocks() -> None:
    message = AIMessage(
        content=[{"type": "text", "text": "hello"}],
        additional_kwargs={"reasoning_content": "thinking"},
    )

    shown = message_view(message)

    assert shown.text.text == "hello"
    assert shown.reasoning is not None
    assert shown.reasoning.text == "thinking"
    assert message_view(HumanMessage("hi")).reasoning is None


def snapshot_at(checkpoint_id: str, parent: str | None, **values: Any) -> HistoryCheckpoint:
    def config(cid: str) -> RunnableConfig:
        return {"configurable": {"thread_id": "t", "checkpoint_id": cid}}

    snapshot = StateSnapshot(
        values=values,
        next=(),
        config=config(checkpoint_id),
        metadata={"source": "loop", "step": 1},
        created_at=None,
        parent_config=config(parent) if parent else None,
        tasks=(),
        interrupts=(),
    )
    return HistoryCheckpoint(snapshot, checkpoint_id, parent, ["fallback_provider"])


def test_a_turn_shows_failed_attempts_their_error_class_and_its_compaction() -> None:
    failed = {
        "provider": "openai:a",
        "outcome": "error",
        "error": "server_error",
        "detail": "HTTP 500",
        "duration_ms": 3.0,
    }
    answered = {
        "provider": "openai:b",
        "outcome": "ok",
        "error": None,
        "detail": None,
        "duration_ms": 5.0,
    }
    summary = {"text": "the user asked about topics", "through": "m9", "messages": 10, "dropped": 0}
    compacted = {"how": "summary", "before": 5000, "after": 900, "budget": 1000}
    usage = {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    history = [
        snapshot_at(
            "2", "1", attempts=[failed, answered], summary=summary, compacted=compacted, usage=usage
        ),
        snapshot_at("1", None, summary=None),
    ]

    (trunk,) = build_timeline(history).branches()
    turn = trunk.checkpoints[1]

    assert turn.attempts is not None
    assert [(a.provider, a.outcome, a.error) for a in turn.attempts] == [
        ("openai:a", "error", "server_error"),
        ("openai:b", "ok", None),
    ]
    assert turn.attempts[0].detail is not None
    assert turn.attempts[0].detail.text == "HTTP 500"
    assert turn.compacted == compacted
    assert turn.summary is not None
    assert (turn.summary.text, turn.summary_covers) == ("the user asked about topics", 10)
    assert turn.usage == usage
    assert trunk.checkpoints[0].summary is None


async def test_an_edited_history_on_v1_is_a_branch_too(chat: Chat) -> None:
    stored = ThreadRef("edited", "key:edited")  # whole histories, as chat clients send
    await chat.turn(stored, ("user", "hello"))
    answer = str((await chat.messages(stored))[-1].content)
    await chat.turn(stored, ("user", "hello"), ("assistant", answer), ("user", "echo one"))
    # The user edited the last message: the thread forks after the first turn.
    await chat.turn(stored, ("user", "hello"), ("assistant", answer), ("user", "echo two"))

    history = await read_history(chat.graph, saver_of(chat), stored.stored_id, limit=100)
    trunk, first, second = build_timeline(history).branches()

    assert trunk.fork_point is not None
    assert ("human", "echo one") in branch_texts(first)
    assert ("human", "echo two") in branch_texts(second)
    assert ("human", "echo one") not in branch_texts(second)
