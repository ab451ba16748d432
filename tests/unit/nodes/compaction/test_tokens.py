"""Token estimates err high, are remembered by message id, and follow the provider's count."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from graph.state import PromptTokens
from nodes.compaction.tokens import (
    MESSAGE_OVERHEAD,
    TokenCounter,
    calibrated,
    message_tokens,
    text_tokens,
)


def test_text_counts_utf8_bytes_by_three() -> None:
    assert text_tokens("abcdef") == 2
    assert text_tokens("abcdefg") == 3
    assert text_tokens("日本語") == 3  # 9 bytes: one token a character, as tokenizers do


def test_an_estimate_is_above_a_real_tokenizers_count_for_english() -> None:
    # "The quick brown fox jumps over the lazy dog." is 10 tokens in cl100k and o200k.
    assert text_tokens("The quick brown fox jumps over the lazy dog.") >= 10


def test_tool_calls_count_too() -> None:
    call = {"name": "calculator", "args": {"expression": "2 + 2"}, "id": "c1", "type": "tool_call"}
    bare = AIMessage(content="")
    assert message_tokens(AIMessage(content="", tool_calls=[call])) > message_tokens(bare)
    assert message_tokens(bare) == MESSAGE_OVERHEAD


def test_estimates_are_remembered_by_id_and_content_length() -> None:
    counter = TokenCounter()
    first = HumanMessage(content="x" * 30, id="m1")
    assert counter.message(first) == 10 + MESSAGE_OVERHEAD
    # The same id and length from a later checkpoint: the remembered estimate answers.
    assert counter.message(HumanMessage(content="y" * 30, id="m1")) == 10 + MESSAGE_OVERHEAD
    # Replaced by another of a different length: measured again.
    assert counter.message(HumanMessage(content="x" * 60, id="m1")) == 20 + MESSAGE_OVERHEAD


def test_the_cache_is_bounded() -> None:
    counter = TokenCounter(capacity=3)
    for n in range(10):
        counter.message(HumanMessage(content="hi", id=f"m{n}"))
    assert len(counter._messages) <= 3


def test_calibration_follows_the_providers_count_and_never_shrinks_an_estimate() -> None:
    assert calibrated(None) == 1.0
    assert calibrated(PromptTokens(estimated=100, reported=150, scale=1.0)) == 1.5
    assert calibrated(PromptTokens(estimated=100, reported=50, scale=1.0)) == 1.0
    # No usage reported for the last call: the factor found before holds.
    assert calibrated(PromptTokens(estimated=100, reported=None, scale=1.3)) == 1.3
