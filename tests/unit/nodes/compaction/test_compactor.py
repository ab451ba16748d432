"""Compaction decisions, with a scripted summariser: what is summarised, kept and sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from graph.state import Summary
from nodes.compaction.compactor import Request, SummaryFailedError, compact
from nodes.compaction.prompt import SUMMARY_HEADING, sent_prompt
from nodes.compaction.tokens import TokenCounter
from nodes.messages import message_text
from tests.unit.nodes.compaction.threads import chat, tool_turn


class Scripted:
    """A summariser that records its prompts and answers `summary <n>`, or fails."""

    def __init__(self, *, budget: int = 10_000, fail: bool = False) -> None:
        self.budget = budget
        self.fail = fail
        self.prompts: list[list[BaseMessage]] = []

    async def __call__(self, prompt: list[BaseMessage], max_tokens: int) -> str:
        self.prompts.append(prompt)
        if self.fail:
            raise SummaryFailedError("every provider failed")
        return f"summary {len(self.prompts)}"


def request(messages: Sequence[BaseMessage], summary: Summary | None = None, **kw: Any) -> Request:
    values: dict[str, Any] = {"budget": 1000, "default_system": "default prompt"}
    values.update(kw)
    return Request(messages=messages, summary=summary, **values)


def ids(messages: Sequence[BaseMessage]) -> list[str | None]:
    return [m.id for m in messages]


async def test_a_prompt_within_budget_is_left_alone() -> None:
    thread = chat(3)
    summariser = Scripted()
    outcome = await compact(request(thread), TokenCounter(), summariser)
    assert outcome.compacted is None
    assert outcome.summary is None
    assert summariser.prompts == []
    assert 0 < outcome.estimate <= 1000


async def test_over_budget_the_oldest_turns_are_summarised_and_the_latest_kept() -> None:
    thread = chat(40)  # about 40 tokens a message: ~3200 in all
    summariser = Scripted()
    outcome = await compact(request(thread), TokenCounter(), summariser)

    assert outcome.compacted is not None
    assert outcome.compacted["how"] == "summary"
    assert outcome.compacted["before"] > 1000 >= outcome.compacted["after"] == outcome.estimate
    summary = outcome.summary
    assert summary is not None
    assert summary["text"] == "summary 1"
    sent = sent_prompt(thread, summary, "default prompt")
    # The client's system prompt stays first, then the summary, then whole recent turns.
    assert sent[0].id == "sys"
    assert isinstance(sent[1], SystemMessage)
    assert SUMMARY_HEADING in message_text(sent[1])
    assert "summary 1" in message_text(sent[1])
    tail = sent[2:]
    assert isinstance(tail[0], HumanMessage)
    assert tail[-1].id == "a40"
    assert ids(tail) == ids(thread[-len(tail) :])
    assert summary["through"] == thread[-len(tail) - 1].id
    assert summary["messages"] == len(thread) - 1 - len(tail)  # all but the system and tail
    # What was dropped went to the summariser, in order, without the system prompt.
    transcript = message_text(summariser.prompts[0][-1])
    assert "question 1:" in transcript
    assert "You are terse." not in transcript
    assert f"question {40 - len(tail) // 2}:" in transcript
    assert f"question {41 - len(tail) // 2}:" not in transcript


async def test_a_new_summary_builds_on_the_previous_one() -> None:
    thread = chat(40)
    first = await compact(request(thread), TokenCounter(), Scripted())
    assert first.summary is not None
    longer = [*thread, *chat(60, system=False)[80:]]  # turns 41..60, ids h41.. a60
    summariser = Scripted()
    summariser.prompts.append([])  # so its answer is "summary 2"
    second = await compact(request(longer, first.summary), TokenCounter(), summariser)

    assert second.summary is not None
    assert second.summary["text"] == "summary 2"
    asked = message_text(summariser.prompts[1][-1])
    assert "Summary so far:\nsummary 1" in asked
    # Only what the first summary did not cover is sent to be added.
    assert "question 1:" not in asked
    assert "question 41:" in asked
    assert second.summary["messages"] > first.summary["messages"]


async def test_when_summarising_fails_the_oldest_turns_are_dropped_instead() -> None:
    thread = chat(40)
    outcome = await compact(request(thread), TokenCounter(), Scripted(fail=True))
    assert outcome.compacted is not None
    assert outcome.compacted["how"] == "trim"
    assert outcome.compacted["after"] <= 1000
    summary = outcome.summary
    assert summary is not None
    assert summary["text"] == ""
    assert summary["dropped"] == summary["messages"] > 0
    sent = sent_prompt(thread, summary, "default prompt")
    assert sent[0].id == "sys"
    assert "earlier messages were left out" in message_text(sent[1])
    assert isinstance(sent[2], HumanMessage)


async def test_without_a_summariser_it_trims() -> None:
    outcome = await compact(request(chat(40)), TokenCounter(), None)
    assert outcome.compacted is not None
    assert outcome.compacted["how"] == "trim"


async def test_tool_calls_stay_with_their_results_and_the_default_prompt_leads() -> None:
    thread: list[BaseMessage] = []
    for n in range(1, 9):
        thread += tool_turn(n, output_words=100)
    outcome = await compact(request(thread, budget=600), TokenCounter(), Scripted())
    sent = sent_prompt(thread, outcome.summary, "default prompt")
    assert message_text(sent[0]) == "default prompt"
    tail = sent[2:]
    assert isinstance(tail[0], HumanMessage)
    calls = {c["id"] for m in tail if isinstance(m, AIMessage) for c in m.tool_calls}
    results = {m.tool_call_id for m in tail if isinstance(m, ToolMessage)}
    assert calls == results
    assert calls


async def test_a_latest_turn_over_the_budget_alone_cannot_be_cut() -> None:
    thread = [HumanMessage(content="word " * 2000, id="h1")]
    outcome = await compact(request(thread), TokenCounter(), Scripted())
    assert outcome.compacted is not None
    assert outcome.compacted["how"] == "failed"
    assert outcome.summary is None


async def test_the_providers_count_makes_it_compact_sooner() -> None:
    thread = chat(8)  # about 700 tokens
    plain = await compact(request(thread), TokenCounter(), Scripted())
    assert plain.compacted is None
    scaled = await compact(request(thread, scale=2.0), TokenCounter(), Scripted())
    assert scaled.compacted is not None
    assert scaled.compacted["budget"] == 500


async def test_tool_schemas_count_against_the_budget() -> None:
    thread = chat(8)
    outcome = await compact(request(thread, extra=600), TokenCounter(), Scripted())
    assert outcome.compacted is not None


async def test_a_long_backlog_is_folded_piece_by_piece() -> None:
    thread = chat(200)
    summariser = Scripted(budget=800)
    outcome = await compact(request(thread, budget=2000), TokenCounter(), summariser)
    assert outcome.summary is not None
    assert 2 < len(summariser.prompts) <= 8
    # Each call adds to the previous call's summary.
    for n, prompt in enumerate(summariser.prompts[1:], start=1):
        assert f"Summary so far:\nsummary {n}" in message_text(prompt[-1])


@pytest.mark.parametrize("through", ["gone", "a5"])
def test_a_summary_of_another_branch_is_not_sent(through: str) -> None:
    thread = chat(3)
    summary = Summary(text="other branch", through=through, messages=10, dropped=0)
    sent = sent_prompt(thread, summary, "default prompt")
    assert all("other branch" not in message_text(m) for m in sent)
    assert ids(sent) == ids(thread)


async def test_a_latest_turn_over_the_budget_with_long_tool_output_is_clipped() -> None:
    thread: list[BaseMessage] = [HumanMessage(content="look it up", id="h1")]
    for n in range(1, 4):  # three tool rounds in one turn, ~1700 tokens of output each
        thread += tool_turn(n, output_words=1200)[1:3]
    outcome = await compact(request(thread), TokenCounter(), Scripted())

    assert outcome.compacted is not None
    assert outcome.compacted["how"] == "clip"
    assert outcome.estimate <= 1000
    sent = sent_prompt(thread, outcome.summary, "default prompt", outcome.clipped)
    results = [m for m in sent if isinstance(m, ToolMessage)]
    assert len(results) == 3  # every call keeps its result, some cut short
    assert any("characters left out to fit the context window" in message_text(m) for m in results)
    assert all(message_text(m).startswith("out out") for m in results)
    # The thread itself is untouched.
    assert all(len(message_text(m)) == len(" ".join(["out"] * 1200)) for m in thread[2::2])


async def test_older_turns_go_first_then_the_latest_turns_tool_output_is_cut() -> None:
    thread = [*chat(10, system=False), HumanMessage(content="look it up", id="h11")]
    thread += tool_turn(11, output_words=1500)[1:3]
    summariser = Scripted()
    outcome = await compact(request(thread), TokenCounter(), summariser)

    assert outcome.compacted is not None
    assert outcome.compacted["how"] == "summary"
    assert outcome.summary is not None
    assert outcome.summary["through"] == "a10"
    assert list(outcome.clipped) == ["r11"]
    assert outcome.estimate <= 1000
