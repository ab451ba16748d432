"""The prompt budget: window less the answer and a margin."""

from __future__ import annotations

from nodes.compaction.budget import prompt_budget, summary_allowance


def test_the_budget_leaves_room_for_the_answer_and_a_margin() -> None:
    assert prompt_budget(128_000, None) == 128_000 - 4096 - 6400
    assert prompt_budget(128_000, 1000) == 128_000 - 1000 - 6400
    assert prompt_budget(2000, None) == 2000 - 500 - 100  # a quarter of a small window


def test_a_max_tokens_as_large_as_the_window_still_leaves_a_prompt() -> None:
    assert prompt_budget(8192, 8192) == 1024


def test_a_summary_takes_at_most_a_quarter_of_the_budget() -> None:
    assert summary_allowance(1400) == 350
    assert summary_allowance(100_000) == 1024
