"""The sliding-window arithmetic of the rate limiter, on a controlled clock."""

from __future__ import annotations

from server.stores.ratelimit import InProcessWindow, RateDecision


def test_the_limit_holds_within_a_window_and_frees_up_gradually() -> None:
    window = InProcessWindow()
    start = 60.0 * 1000  # the start of a window
    assert [window.hit("k", 3, start + i).allowed for i in range(4)] == [True] * 3 + [False]

    refused = window.hit("k", 3, start + 10)
    assert not refused.allowed
    assert refused.headers()["retry-after"] == "50"  # the next window...

    # ...where the previous window still weighs: at +30 s half of 3 is 1 (floored).
    assert window.hit("k", 3, start + 90).allowed
    assert window.hit("k", 3, start + 90).allowed
    assert not window.hit("k", 3, start + 90).allowed
    assert window.hit("k", 3, start + 125).allowed  # the old window has weight 0 now


def test_subjects_are_counted_apart() -> None:
    window = InProcessWindow()
    assert window.hit("a", 1, 0.5).allowed
    assert not window.hit("a", 1, 0.6).allowed
    assert window.hit("b", 1, 0.7).allowed


def test_headers_follow_openai() -> None:
    allowed = RateDecision(True, 60, 59, 59.5)
    assert allowed.headers() == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "59.5s",
    }
    refused = RateDecision(False, 60, 0, 61.2)
    assert refused.headers()["x-ratelimit-reset-requests"] == "1m2s"
    assert refused.headers()["retry-after"] == "62"
    assert RateDecision(False, 1, 0, 0.01).headers()["retry-after"] == "1"
