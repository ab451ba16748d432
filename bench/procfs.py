"""What `/proc` says about a process: CPU time (utime + stime) and resident memory.

CPU time is counted in clock ticks (`SC_CLK_TCK`, 100 per second here, so 10 ms each):
a figure per request is only as good as the number of requests it is divided by.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CpuSample",
    "clock_tick_ms",
    "cpu_ms",
    "parse_stat_ticks",
    "parse_status_kib",
    "rss_mib",
]


def clock_tick_ms() -> float:
    """Milliseconds per clock tick of `/proc/<pid>/stat`."""
    return 1000.0 / os.sysconf("SC_CLK_TCK")


def parse_stat_ticks(stat: str) -> int:
    """The CPU time (utime + stime), in clock ticks, from the text of `/proc/<pid>/stat`.

    The second field (the command name, in parentheses) may itself hold spaces and
    parentheses, so the fields are counted from the last `)`.

    Raises:
        ValueError: Not the text of a stat file.
    """
    _, paren, rest = stat.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) < 13:
        raise ValueError(f"not a /proc/<pid>/stat line: {stat[:80]!r}")
    # Fields 14 (utime) and 15 (stime), counted from 1; `rest` starts at field 3 (state).
    return int(fields[11]) + int(fields[12])


def parse_status_kib(status: str, field: str) -> int:
    """A `kB` field (`VmRSS`, `VmHWM`) of `/proc/<pid>/status`.

    Raises:
        KeyError: The field is not there.
    """
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise KeyError(field)


def cpu_ms(pid: int) -> float:
    """CPU time the process has used so far (all its threads, user and system), in ms."""
    return parse_stat_ticks(Path(f"/proc/{pid}/stat").read_text()) * clock_tick_ms()


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of the process (`VmRSS`; `VmHWM` for the peak), in MiB."""
    return parse_status_kib(Path(f"/proc/{pid}/status").read_text(), field) / 1024


@dataclass(frozen=True)
class CpuSample:
    """CPU time of a process at one moment, to subtract from a later one."""

    pid: int
    ms: float

    @classmethod
    def now(cls, pid: int) -> CpuSample:
        """Sample the process's CPU time."""
        return cls(pid, cpu_ms(pid))

    def since(self) -> float:
        """CPU ms the process used since this sample."""
        return cpu_ms(self.pid) - self.ms
