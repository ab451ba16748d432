"""Percentiles, medians of repeats and ratios of the benchmark."""

from __future__ import annotations

import math

import pytest

from bench.stats import median_of, percentile, ratio


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    # 99th of 1..100: 99% of the way from rank 0 to rank 99, i.e. 99.01
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.5], 99) == 7.5


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_refuses_a_rank_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="within 0-100"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_median_of_skips_missing_values() -> None:
    assert median_of([3.0, None, 1.0, math.nan, 2.0]) == 2.0
    assert median_of([None, None]) is None


def test_ratio_is_none_when_it_cannot_be_computed() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None
