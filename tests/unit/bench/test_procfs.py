"""Reading CPU time and memory from /proc."""

from __future__ import annotations

import os
import time

import pytest

from bench.procfs import (
    CpuSample,
    clock_tick_ms,
    parse_stat_ticks,
    parse_status_kib,
    rss_mib,
)

# A real line of /proc/<pid>/stat, with a command name holding spaces and parentheses.
STAT = (
    "4242 (python (bench) x) S 1 4242 4242 0 -1 4194304 12000 0 3 0 "
    "731 129 5 2 20 0 3 0 1000 200000000 40000 18446744073709551615"
)


def test_stat_ticks_are_utime_plus_stime_counted_from_the_last_parenthesis() -> None:
    assert parse_stat_ticks(STAT) == 731 + 129


@pytest.mark.parametrize("text", ["", "4242 python S 1 2", "4242 (x) S 1 2 3"])
def test_stat_refuses_what_is_not_a_stat_line(text: str) -> None:
    with pytest.raises(ValueError, match="stat"):
        parse_stat_ticks(text)


def test_status_fields_in_kib() -> None:
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n"
    assert parse_status_kib(status, "VmRSS") == 102400
    assert parse_status_kib(status, "VmHWM") == 204800
    with pytest.raises(KeyError):
        parse_status_kib(status, "VmSwap")


def test_cpu_of_this_process_grows_with_work_and_rss_is_plausible() -> None:
    sample = CpuSample.now(os.getpid())
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass  # burn 100 ms of CPU
    spent = sample.since()
    assert spent >= 100 - 2 * clock_tick_ms()
    assert 1 < rss_mib(os.getpid()) < 10_000
    assert rss_mib(os.getpid(), "VmHWM") >= rss_mib(os.getpid())
