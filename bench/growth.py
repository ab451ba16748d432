"""Growing threads turn by turn, and what a turn costs early and late in a thread.

`grow` sends every thread of a `ThreadPool` the same number of turns, in segments; the
segments given as windows (say turns 2-11 and 191-200) are measured: the target's CPU ms per
turn over the window, all threads together (a window of 10 turns on one thread is only ~10
clock ticks of CPU: several threads make it precise).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.loadgen import closed_loop
from bench.payloads import Endpoint, ThreadPool
from bench.procfs import CpuSample
from bench.stats import percentile, ratio

__all__ = ["Growth", "Window", "grow", "segments"]


@dataclass(frozen=True)
class Window:
    """CPU per turn over turns `first`..`last` (1-based, inclusive) of every thread."""

    first: int
    last: int
    cpu_ms: float | None
    p50_ms: float | None


@dataclass(frozen=True)
class Growth:
    """One growth: threads, their final length, the measured windows."""

    target: str
    threads: int
    concurrency: int
    turns: int
    errors: int
    first_error: str | None
    seconds: float
    windows: tuple[Window, ...]

    @property
    def ratio(self) -> float | None:
        """CPU per turn of the last window over that of the first."""
        if len(self.windows) < 2:
            return None
        return ratio(self.windows[-1].cpu_ms, self.windows[0].cpu_ms)


def segments(turns: int, windows: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Turns 1..`turns` cut into consecutive (first, last, measured) segments.

    Raises:
        ValueError: Windows that overlap, are out of order or outside 1..turns.
    """
    cuts: list[tuple[int, int, bool]] = []
    at = 1
    for first, last in windows:
        if first < at or last < first or last > turns:
            raise ValueError(f"window {first}-{last} does not fit after turn {at - 1}")
        if first > at:
            cuts.append((at, first - 1, False))
        cuts.append((first, last, True))
        at = last + 1
    if at <= turns:
        cuts.append((at, turns, False))
    return cuts


async def grow(
    endpoint: Endpoint,
    pool: ThreadPool,
    *,
    threads: int,
    concurrency: int,
    turns: int,
    windows: list[tuple[int, int]],
    expect: str | None = None,
) -> Growth:
    """Send each of the pool's `threads` threads `turns` turns, measuring the windows.

    `threads` must be a multiple of `concurrency` (each worker then owns as many).

    Raises:
        ValueError: It is not, or the windows do not fit.
    """
    if threads % concurrency:
        raise ValueError(f"{threads} threads do not split between {concurrency} workers")
    measured: list[Window] = []
    errors, first_error, seconds = 0, None, 0.0
    for first, last, measure in segments(turns, windows):
        cpu = CpuSample.now(endpoint.pid) if endpoint.pid is not None and measure else None
        load = await closed_loop(
            endpoint, pool, concurrency, threads * (last - first + 1), expect=expect
        )
        errors += load.errors
        first_error = first_error or load.first_error
        seconds += load.wall_s
        if measure:
            spent = cpu.since() / max(load.completed, 1) if cpu is not None else None
            p50 = percentile(load.latencies_ms, 50) if load.latencies_ms else None
            measured.append(Window(first, last, spent, p50))
    return Growth(
        endpoint.name, threads, concurrency, turns, errors, first_error, seconds, tuple(measured)
    )
