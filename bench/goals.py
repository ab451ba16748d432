"""The issue's goals, as `Goal` lines computed from one run's results (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.growth import Growth
from bench.report import Goal, Row, added_p50, cpu_ratio, find, label, tail_ratio
from bench.stats import ratio

__all__ = ["Measured", "goals"]

#: The service's CPU per request may be this many times the one-node floor's.
FLOOR_FACTOR = 1.3
#: p99 may be this many times p50 at C=8.
TAIL_FACTOR = 2.5
#: Turn 200 may cost this many times turn 2.
FLAT_FACTOR = 1.5
COLD_START_S = 1.5
IDLE_RSS_MIB = 150.0
#: Throughput the service should reach against LiteLLM's, stateless (non-stream, stream).
LITELLM_FACTOR = {False: 2.2, True: 3.0}


@dataclass(frozen=True)
class Measured:
    """Everything but the series that the goals read.

    Attributes:
        tx_per_turn: By (target, config), from the probes.
        flatness: Thread-length runs (and the growth of the long threads).
        cold_start_s: Median spawn-to-first-answer of the service on its defaults.
        idle_rss_mib: Its RSS after warm-up.
        threads_rss_mib: Its RSS after `threads` fresh threads.
        threads: How many.
    """

    tx_per_turn: dict[tuple[str, str], float]
    flatness: Sequence[Growth]
    cold_start_s: float | None
    idle_rss_mib: float | None
    threads_rss_mib: float | None
    threads: int


def _mode(stream: bool) -> str:
    return "stream" if stream else "json"


def goals(rows: Sequence[Row], measured: Measured, concurrencies: Sequence[int]) -> list[Goal]:
    """Every goal line, in the issue's order."""
    lines: list[Goal] = []
    pairs = (
        ("service", "floor", "stateless", "stateless"),
        ("service-pg", "floor-pg", "fresh", "fresh thread"),
        ("service-pg", "floor-pg", "long", "long thread"),
    )
    for mine, floor, config, what in pairs:
        for stream in (False, True):
            for c in concurrencies:
                value = cpu_ratio(rows, mine, floor, config, stream, c)
                text = f"CPU/req {label(mine)} / {label(floor)}, {what}, {_mode(stream)} C={c}"
                lines.append(Goal(text, value, FLOOR_FACTOR))
    top = max(concurrencies)
    for stream in (False, True):
        litellm = find(rows, "litellm", "stateless", stream, top)
        if litellm is None:
            continue
        service = find(rows, "service", "stateless", stream, top)
        rps = ratio(service.rps if service else None, litellm.rps)
        text = f"req/s service / LiteLLM, stateless, {_mode(stream)} C={top}"
        lines.append(Goal(text, rps, LITELLM_FACTOR[stream], at_least=True))
        for c in concurrencies:
            value = cpu_ratio(rows, "service", "litellm", "stateless", stream, c)
            text = f"CPU/req service / LiteLLM, stateless, {_mode(stream)} C={c}"
            lines.append(Goal(text, value))
    for target, config in (
        ("floor", "stateless"),
        ("litellm", "stateless"),
        ("service", "stateless"),
        ("floor-pg", "fresh"),
        ("service-pg", "fresh"),
    ):
        for stream in (False, True):
            value = added_p50(rows, target, config, stream)
            if value is not None:
                text = f"added p50 at C=1 over direct, {label(target)} {config} {_mode(stream)}"
                lines.append(Goal(text, value, unit="ms"))
    if 8 in concurrencies:
        for target, config in (
            ("direct", "stateless"),
            ("floor", "stateless"),
            ("service", "stateless"),
            ("floor-pg", "fresh"),
            ("service-pg", "fresh"),
            ("service-pg", "long"),
        ):
            for stream in (False, True):
                value = tail_ratio(find(rows, target, config, stream, 8))
                limit = TAIL_FACTOR if target.startswith("service") else None
                text = f"p99/p50 at C=8, {label(target)} {config} {_mode(stream)}"
                lines.append(Goal(text, value, limit))
    for config in ("fresh", "long"):
        ours = measured.tx_per_turn.get(("service-pg", config))
        theirs = measured.tx_per_turn.get(("floor-pg", config))
        counts = " vs ".join("-" if n is None else f"{n:.1f}" for n in (ours, theirs))
        text = f"PG transactions/turn service / floor, {config} thread ({counts})"
        lines.append(Goal(text, ratio(ours, theirs), 1.0))
    for growth in measured.flatness:
        if len(growth.windows) < 2:
            continue
        early, late = growth.windows[0], growth.windows[-1]
        text = (
            f"CPU/turn {late.first}-{late.last} / {early.first}-{early.last}, "
            f"{label(growth.target)}, {growth.threads} threads C={growth.concurrency}"
        )
        limit = FLAT_FACTOR if growth.target.startswith("service") else None
        lines.append(Goal(text, growth.ratio, limit))
    lines.append(Goal("cold start, service on defaults", measured.cold_start_s, COLD_START_S, "s"))
    lines.append(Goal("idle RSS after warm-up", measured.idle_rss_mib, IDLE_RSS_MIB, "MiB"))
    text = f"RSS after {measured.threads} fresh threads"
    lines.append(Goal(text, measured.threads_rss_mib, IDLE_RSS_MIB, "MiB"))
    return lines
