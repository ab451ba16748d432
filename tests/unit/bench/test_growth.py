"""How a thread's turns are cut into measured and unmeasured segments."""

from __future__ import annotations

import pytest

from bench.growth import Growth, Window, segments
from bench.plan import QUICK, windows


def test_segments_cover_every_turn_once() -> None:
    cuts = segments(200, [(2, 11), (191, 200)])
    assert cuts == [(1, 1, False), (2, 11, True), (12, 190, False), (191, 200, True)]
    assert sum(last - first + 1 for first, last, _ in cuts) == 200


def test_segments_without_windows_is_one_unmeasured_run() -> None:
    assert segments(5, []) == [(1, 5, False)]


@pytest.mark.parametrize("bad", [[(2, 11), (5, 20)], [(0, 3)], [(2, 60)], [(5, 3)]])
def test_segments_refuse_windows_that_do_not_fit(bad: list[tuple[int, int]]) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        segments(50, bad)


def test_windows_shrink_for_short_threads() -> None:
    assert windows(200) == [(2, 11), (191, 200)]
    assert windows(50) == [(2, 11), (41, 50)]
    assert windows(20) == [(2, 10), (12, 20)]
    assert windows(4) == []
    for turns in range(5, 60):
        segments(turns, windows(turns))  # always fits


def test_growth_ratio_is_late_over_early() -> None:
    growth = Growth(
        "s", 4, 1, 200, 0, None, 1.0, (Window(2, 11, 10.0, 1), Window(191, 200, 15.0, 1))
    )
    assert growth.ratio == 1.5
    assert Growth("s", 4, 1, 3, 0, None, 1.0, ()).ratio is None


def test_a_plan_refuses_long_threads_that_cannot_keep_every_worker_busy() -> None:
    assert QUICK.with_overrides(long_threads=16).long_threads == 16
    with pytest.raises(ValueError, match="multiple of the largest C"):
        QUICK.with_overrides(long_threads=12)
    with pytest.raises(ValueError, match="multiple of the largest C"):
        QUICK.with_overrides(concurrencies=(1, 32))
    assert QUICK.with_overrides(requests=None).requests == QUICK.requests
