"""How many prompt tokens a model takes: its window, less the answer and a margin."""

from __future__ import annotations

from typing import Final

DEFAULT_ANSWER_TOKENS: Final = 4096
"""Room left for the answer when the client set no `max_tokens` (a quarter of a smaller
window)."""
MARGIN_SHARE: Final = 0.05
"""Of the window, kept free for what the estimate cannot see (the provider's own framing)."""
MIN_MARGIN: Final = 64
SUMMARY_SHARE: Final = 0.25
"""Of the prompt budget, the most a summary may take."""
MAX_SUMMARY_TOKENS: Final = 1024


def answer_allowance(window: int, max_tokens: int | None) -> int:
    """Tokens kept for the answer: the client's `max_tokens`, else 4096 or a quarter."""
    if max_tokens is not None:
        return max_tokens
    return min(DEFAULT_ANSWER_TOKENS, window // 4)


def prompt_budget(window: int, max_tokens: int | None) -> int:
    """Prompt tokens that fit `window` with the answer and the margin.

    A `max_tokens` near the window would leave no prompt at all; the budget never falls
    below an eighth of the window (such a request is the provider's to refuse).
    """
    margin = max(MIN_MARGIN, int(window * MARGIN_SHARE))
    return max(window - answer_allowance(window, max_tokens) - margin, window // 8)


def summary_allowance(budget: int) -> int:
    """The longest summary asked for, in tokens, within a prompt of `budget`."""
    return max(1, min(MAX_SUMMARY_TOKENS, int(budget * SUMMARY_SHARE)))
