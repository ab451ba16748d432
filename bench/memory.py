"""Cold start and memory of the service on its embedded defaults.

The defaults are the `offline` model, SQLite and no Redis. Measured: spawn to first answered
completion, idle RSS after a warm-up, RSS over many fresh threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import closed_loop, run_loop
from bench.payloads import Endpoint, FreshThreads, Stateless
from bench.procfs import rss_mib
from bench.stats import median_of
from bench.targets import TargetProcess

__all__ = ["ColdStart", "ThreadMemory", "cold_starts"]

#: Fresh threads per step of `ThreadMemory` (a step is a unit of work between PG waits).
STEP = 250


@dataclass
class ColdStart:
    """Spawn to first answered completion, each run, and their median."""

    runs_s: list[float]

    @property
    def median_s(self) -> float | None:
        """The median run."""
        return median_of(self.runs_s)


def cold_starts(
    spawn: Callable[[int], TargetProcess], runs: int
) -> tuple[ColdStart, TargetProcess]:
    """Spawn `runs` fresh processes one after the other; all but the last are stopped.

    Returns:
        The timings, and the last process, still running (for `ThreadMemory`).
    """
    timings: list[float] = []
    process: TargetProcess | None = None
    for run in range(runs):
        if process is not None:
            process.stop()
        process = spawn(run).start()
        assert process.cold_start_s is not None
        timings.append(process.cold_start_s)
    assert process is not None, "runs must be at least 1"
    return ColdStart(timings), process


@dataclass
class ThreadMemory:
    """RSS of a running service as fresh threads accumulate, in steps of `STEP`.

    Attributes:
        endpoint: The service (its `offline` model).
        target: How many fresh threads in all.
        store: Its SQLite file (for the size the threads take on disk).
        concurrency: Workers sending them.
        idle_rss_mib: After the warm-up (`warm_up`), idle for a second.
        curve: (threads so far, RSS MiB, SQLite MiB) after each step.
        seconds: Wall time of the steps.
        errors: Failed requests.
    """

    endpoint: Endpoint
    target: int
    store: Path | None = None
    concurrency: int = 8
    idle_rss_mib: float | None = None
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    first_error: str | None = None

    def __post_init__(self) -> None:
        self._source = FreshThreads(self.endpoint, "rss", stream=False)
        self._done = 0

    @property
    def pid(self) -> int:
        """The service's process."""
        assert self.endpoint.pid is not None
        return self.endpoint.pid

    def warm_up(self, requests: int = 50) -> None:
        """Some stateless and some fresh-thread turns, then a second idle: `idle_rss_mib`."""
        stateless = Stateless(self.endpoint, stream=False)
        run_loop(lambda: closed_loop(self.endpoint, stateless, 4, requests))
        run_loop(lambda: closed_loop(self.endpoint, self._source, 4, requests))
        time.sleep(1.0)
        self.idle_rss_mib = rss_mib(self.pid)
        self.curve.append((0, self.idle_rss_mib, self._store_mib()))

    def _store_mib(self) -> float:
        if self.store is None or not self.store.exists():
            return 0.0
        files = [self.store, *self.store.parent.glob(self.store.name + "-*")]  # -wal, -shm
        return sum(f.stat().st_size for f in files if f.exists()) / (1 << 20)

    def step(self) -> bool:
        """Send the next `STEP` fresh threads; False once all are sent (nothing done)."""
        if self._done >= self.target:
            return False
        count = min(STEP, self.target - self._done)
        load = run_loop(lambda: closed_loop(self.endpoint, self._source, self.concurrency, count))
        self._done += count
        self.seconds += load.wall_s
        self.errors += load.errors
        self.first_error = self.first_error or load.first_error
        self.curve.append((self._done, rss_mib(self.pid), self._store_mib()))
        return True

    @property
    def final_rss_mib(self) -> float | None:
        """RSS after the last step."""
        return self.curve[-1][1] if self.curve else None

    @property
    def peak_rss_mib(self) -> float:
        """The process's peak RSS so far (`VmHWM`)."""
        return rss_mib(self.pid, "VmHWM")
