"""How much the benchmark measures.

The full run (`make bench`) and the short one (`make bench-quick`, under two minutes on a
2-core machine).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["FULL", "QUICK", "Plan", "windows"]


@dataclass(frozen=True)
class Plan:
    """The sizes of one run.

    Attributes:
        name: `full` or `quick`.
        concurrencies: The C of the series.
        requests: Measured requests per series, at most.
        duration: Seconds per series, at most (whichever of the two comes first)...
        at_least: ...but never fewer requests than this many per worker (so that p99 and
            the CPU figure rest on enough of them when a system is slow).
        repeats: Runs of each series (the figures are their medians), interleaved.
        long_threads: Threads of the long-thread series (a multiple of each C).
        long_turns: Turns those threads are grown to before the series.
        long_step: Turns each long thread gets per long-thread series: such a series sends
            exactly `long_threads * long_step` requests (no warm-up, no time limit), so the
            threads of every system grow alike; the table's header says how far.
        probe_turns: Turns of each transaction-count probe (C=1).
        flat_threads: Threads of the thread-length run (0: none; the quick run reads the
            growth of the long threads instead).
        flat_turns: Turns of the thread-length run.
        cold_starts: Spawns of the service on its defaults (their median is reported).
        fresh_threads: Fresh threads sent to the service on its defaults, for its RSS.
        known_transactions: Transactions of the counting method's check.
    """

    name: str
    concurrencies: tuple[int, ...]
    requests: int
    duration: float
    at_least: int
    repeats: int
    long_threads: int
    long_turns: int
    long_step: int
    probe_turns: int
    flat_threads: int
    flat_turns: int
    cold_starts: int
    fresh_threads: int
    known_transactions: int = 10

    def __post_init__(self) -> None:
        top = max(self.concurrencies)
        if self.long_threads < top or self.long_threads % min(top, self.long_threads):
            raise ValueError(
                f"long_threads ({self.long_threads}) must be a multiple of the largest C ({top})"
            )
        if self.flat_threads and self.flat_turns < 5:
            raise ValueError("the thread-length run needs at least 5 turns")

    def with_overrides(self, **changes: object) -> Plan:
        """This plan with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @property
    def long_span(self) -> tuple[int, int]:
        """Turns of the long threads at the first long series and after the last one.

        The probe's turns, spread over them, come on top.
        """
        series = self.repeats * 2 * len(self.concurrencies)
        return (self.long_turns, self.long_turns + series * self.long_step)

    @property
    def flat_windows(self) -> list[tuple[int, int]]:
        """Turns 2-11 against the last ten of the thread-length run."""
        return windows(self.flat_turns)

    @property
    def growth_windows(self) -> list[tuple[int, int]]:
        """Turns 2-11 against the last ten while the long threads grow."""
        return windows(self.long_turns)


def windows(turns: int, width: int = 10) -> list[tuple[int, int]]:
    """Turns 2.. against the last ones of a thread of `turns` turns, `width` each.

    Fewer when the thread is too short for two such windows apart; none under 5 turns.
    """
    width = min(width, (turns - 1) // 2)
    if width < 2:
        return []
    return [(2, 1 + width), (turns - width + 1, turns)]


FULL = Plan(
    name="full",
    concurrencies=(1, 8, 32),
    requests=600,
    duration=15.0,
    at_least=10,
    repeats=3,
    long_threads=64,
    long_turns=50,
    long_step=2,
    probe_turns=40,
    flat_threads=4,
    flat_turns=200,
    cold_starts=3,
    fresh_threads=50_000,
)

QUICK = Plan(
    name="quick",
    concurrencies=(1, 8),
    requests=60,
    duration=1.2,
    at_least=4,
    repeats=1,
    long_threads=8,
    long_turns=20,
    long_step=3,
    probe_turns=20,
    flat_threads=0,
    flat_turns=0,
    cold_starts=1,
    fresh_threads=1000,
)
