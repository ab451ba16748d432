"""The printed report: one row per series (medians of its repeats), then the goals.

The ratios the issue's goals are stated in follow the rows, each with its goal and whether
it is met.

Pure functions of the results, so they can be tested without running anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bench.series import SeriesRun
from bench.stats import median_of, ratio

__all__ = [
    "Goal",
    "Row",
    "format_goals",
    "format_table",
    "label",
    "summarize",
]

#: How each system is called in the table.
LABELS = {
    "direct": "direct to upstream",
    "floor": "one-node graph",
    "floor-pg": "one-node + PostgresSaver",
    "litellm": "LiteLLM proxy",
    "service": "service",
    "service-pg": "service + PG/Redis",
}


def label(target: str) -> str:
    """The table's name for a system."""
    return LABELS.get(target, target)


@dataclass(frozen=True)
class Row:
    """One series: the medians over its repeats.

    Attributes:
        tx_per_turn: From the system's transaction probe of the same configuration.
    """

    target: str
    config: str
    stream: bool
    concurrency: int
    repeats: int
    requests: int
    errors: int
    rps: float | None
    p50_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    cpu_ms: float | None
    upstream_cpu_ms: float | None
    rss_mib: float | None
    rows: dict[str, float] = field(default_factory=dict)
    tx_per_turn: float | None = None

    @property
    def key(self) -> tuple[str, str, bool, int]:
        """(target, config, stream, concurrency)."""
        return (self.target, self.config, self.stream, self.concurrency)


def summarize(
    runs: Iterable[SeriesRun], tx_per_turn: dict[tuple[str, str], float] | None = None
) -> list[Row]:
    """One `Row` per series, in the order the series first ran.

    Args:
        runs: Every run of every series.
        tx_per_turn: Transactions per turn by (target, config), from the probes.
    """
    groups: dict[tuple[str, str, bool, int], list[SeriesRun]] = {}
    for run in runs:
        groups.setdefault((run.target, run.config, run.stream, run.concurrency), []).append(run)
    rows: list[Row] = []
    for (target, config, stream, concurrency), group in groups.items():

        def med(
            get: Callable[[SeriesRun], float | None], group: list[SeriesRun] = group
        ) -> float | None:
            return median_of(get(run) for run in group)

        tables = sorted({name for run in group for name in run.rows})
        rows.append(
            Row(
                target=target,
                config=config,
                stream=stream,
                concurrency=concurrency,
                repeats=len(group),
                requests=sum(run.requests for run in group),
                errors=sum(run.errors for run in group),
                rps=med(lambda r: r.rps),
                p50_ms=med(lambda r: r.p50_ms),
                p99_ms=med(lambda r: r.p99_ms),
                ttft_p50_ms=med(lambda r: r.ttft_p50_ms),
                cpu_ms=med(lambda r: r.cpu_ms),
                upstream_cpu_ms=med(lambda r: r.upstream_cpu_ms),
                rss_mib=med(lambda r: r.rss_mib),
                rows={
                    name: value
                    for name in tables
                    if (value := med(lambda r, n=name: r.rows.get(n))) is not None  # type: ignore[misc]
                },
                tx_per_turn=(tx_per_turn or {}).get((target, config)),
            )
        )
    return rows


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    ("system", 25),
    ("config", 9),
    ("mode", 6),
    ("C", 3),
    ("req/s", 7),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("TTFT", 6),
    ("CPU ms", 7),
    ("up CPU", 6),
    ("tx/turn", 7),
    ("ckpt/turn", 9),
    ("RSS MiB", 7),
    ("err", 4),
)


def format_table(rows: Sequence[Row]) -> str:
    """The series as a fixed-width table (CPU: the system's own, ms per request)."""
    head = " ".join(
        name.ljust(width) if i < 3 else name.rjust(width) for i, (name, width) in enumerate(COLUMNS)
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = [
            label(row.target),
            row.config,
            "stream" if row.stream else "json",
            str(row.concurrency),
            _num(row.rps, 0),
            _num(row.p50_ms),
            _num(row.p99_ms),
            _num(row.ttft_p50_ms),
            _num(row.cpu_ms, 2),
            _num(row.upstream_cpu_ms, 2),
            _num(row.tx_per_turn),
            _num(row.rows.get("checkpoints")),
            _num(row.rss_mib, 0),
            str(row.errors),
        ]
        lines.append(
            " ".join(
                cell.ljust(width) if i < 3 else cell.rjust(width)
                for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True))
            )
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Goal:
    """One figure the issue sets a goal for.

    Attributes:
        what: What is compared.
        value: The figure (a ratio, seconds, MiB), None when not measured.
        limit: The goal: `value` at most this (None: informative only).
        unit: How `value` reads ("x", "s", "MiB", "ms").
        at_least: The goal is `value` at least `limit` instead.
    """

    what: str
    value: float | None
    limit: float | None = None
    unit: str = "x"
    at_least: bool = False

    @property
    def met(self) -> bool | None:
        """Whether the goal is met (None: no goal, or not measured)."""
        if self.limit is None or self.value is None:
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit


def format_goals(goals: Sequence[Goal]) -> str:
    """One line per figure: value, goal, verdict."""
    width = max((len(goal.what) for goal in goals), default=10)
    lines = []
    for goal in goals:
        value = "-" if goal.value is None else f"{goal.value:.2f}{goal.unit}"
        sign = ">=" if goal.at_least else "<="
        limit = "" if goal.limit is None else f"goal {sign} {goal.limit:g}{goal.unit}"
        verdict = {True: "met", False: "NOT met", None: ""}[goal.met]
        lines.append(f"{goal.what.ljust(width)}  {value:>10}  {limit:<16} {verdict}".rstrip())
    return "\n".join(lines)


def find(rows: Sequence[Row], target: str, config: str, stream: bool, c: int) -> Row | None:
    """The row of one series."""
    for row in rows:
        if row.key == (target, config, stream, c):
            return row
    return None


def cpu_ratio(
    rows: Sequence[Row], target: str, floor: str, config: str, stream: bool, c: int
) -> float | None:
    """CPU per request of `target` over that of `floor`, same configuration and C."""
    mine, theirs = find(rows, target, config, stream, c), find(rows, floor, config, stream, c)
    return ratio(mine.cpu_ms if mine else None, theirs.cpu_ms if theirs else None)


def tail_ratio(row: Row | None) -> float | None:
    """p99 over p50 of a series."""
    return ratio(row.p99_ms, row.p50_ms) if row is not None else None


def added_p50(rows: Sequence[Row], target: str, config: str, stream: bool) -> float | None:
    """p50 at C=1 of `target` minus that of the direct call, in ms."""
    mine = find(rows, target, config, stream, 1)
    direct = find(rows, "direct", "stateless", stream, 1)
    if mine is None or direct is None or mine.p50_ms is None or direct.p50_ms is None:
        return None
    return mine.p50_ms - direct.p50_ms
