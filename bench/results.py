"""A run's results as JSON.

The raw runs, the per-series medians, the goals, and the conditions (plan, pinning,
machine).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from pathlib import Path
from typing import Any

from bench.goals import Measured
from bench.report import Goal, Row, summarize
from bench.run import Outcome

__all__ = ["measured", "rows_of", "to_json", "write"]


def rows_of(outcome: Outcome) -> list[Row]:
    """The per-series medians."""
    return summarize(outcome.series, outcome.tx_per_turn)


def measured(outcome: Outcome) -> Measured:
    """What the goals read besides the series."""
    memory = outcome.memory
    return Measured(
        tx_per_turn=outcome.tx_per_turn,
        flatness=outcome.growth,
        cold_start_s=outcome.cold_start.median_s if outcome.cold_start else None,
        idle_rss_mib=memory.idle_rss_mib if memory else None,
        threads_rss_mib=memory.final_rss_mib if memory else None,
        threads=memory.target if memory else 0,
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {
            str(k) if not isinstance(k, tuple) else "/".join(map(str, k)): _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def to_json(outcome: Outcome, rows: list[Row], lines: list[Goal]) -> dict[str, Any]:
    """Everything, as plain JSON values."""
    memory = outcome.memory
    return {
        "plan": _plain(outcome.plan),
        "pinning": outcome.pinning,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "wall_s": outcome.wall_s,
        "idle_waits_s": outcome.idle_waits_s,
        "notes": outcome.notes,
        "rows": [_plain(row) for row in rows],
        "goals": [{**_plain(goal), "met": goal.met} for goal in lines],
        "runs": [_plain(run) for run in outcome.series],
        "probes": [{**_plain(p), "per_turn": p.per_turn} for p in outcome.probes],
        "calibration": (
            {"known": outcome.calibration[0], "counted": outcome.calibration[1]}
            if outcome.calibration
            else None
        ),
        "growth": [{**_plain(g), "ratio": g.ratio} for g in outcome.growth],
        "cold_start": (
            {"runs_s": outcome.cold_start.runs_s, "median_s": outcome.cold_start.median_s}
            if outcome.cold_start
            else None
        ),
        "memory": (
            {
                "threads": memory.target,
                "idle_rss_mib": memory.idle_rss_mib,
                "curve": memory.curve,
                "seconds": memory.seconds,
                "errors": memory.errors,
                "first_error": memory.first_error,
            }
            if memory
            else None
        ),
        "starts_s": outcome.starts_s,
    }


def write(path: Path, document: dict[str, Any]) -> None:
    """Write the JSON (creating its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
