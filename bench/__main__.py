"""`python -m bench [--quick] [--json PATH]`: run the benchmark.

Prints its table and goals, and writes its JSON (default `.bench/results/<timestamp>.json`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.goals import goals
from bench.plan import FULL, QUICK
from bench.report import format_goals, format_table
from bench.results import measured, rows_of, to_json, write
from bench.run import Options, Outcome, run
from bench.targets import ROOT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short run (make bench-quick)")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--requests", type=int, help="measured requests per series, at most")
    parser.add_argument("--duration", type=float, help="seconds per series, at most")
    parser.add_argument("--repeats", type=int, help="runs of each series")
    parser.add_argument("--threads", type=int, help="fresh threads of the memory run")
    parser.add_argument("--flat-turns", type=int, help="turns of the thread-length run")
    parser.add_argument("--flat-threads", type=int, help="threads of the thread-length run")
    parser.add_argument("--long-threads", type=int, help="threads of the long-thread series")
    parser.add_argument("--long-turns", type=int, help="turns they are grown to")
    parser.add_argument("--cold-starts", type=int, help="spawns of the cold-start run")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", help="the C of the series (default 1 8 32)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="superuser DSN of the postgres database (BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--database", default="bench", help="the benchmark's database")
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="Redis URL with the benchmark's database number (BENCH_REDIS_URL)",
    )
    parser.add_argument("--redis-prefix", default="bench", help="the service's Redis prefix")
    parser.add_argument("--log-level", help="the service's LOG_LEVEL (default: its own)")
    parser.add_argument(
        "--peers",
        action="store_true",
        default=os.environ.get("BENCH_PEERS") == "1",
        help="also measure LiteLLM's proxy (BENCH_PEERS=1), installed on first use",
    )
    return parser


def report(outcome: Outcome) -> str:
    """The printed report."""
    rows = rows_of(outcome)
    plan = outcome.plan
    lines = [
        f"benchmark ({plan.name}): {outcome.pinning}; medians of {plan.repeats} repeat(s).",
        "config: stateless = no thread; fresh = a new X-Thread-Id per request; long = one "
        f"message appended to one of {plan.long_threads} threads grown to "
        f"{plan.long_turns} turns (to {plan.long_span[1]} by the last long series)",
        "CPU ms = the system's own utime+stime per request; up CPU = the fake upstream's;",
        "tx/turn = PostgreSQL transactions per turn (a C=1 probe, non-stream); ckpt/turn = rows",
        "of `checkpoints` per turn; RSS after the series.",
        "",
        format_table(rows),
        "",
        format_goals(goals(rows, measured(outcome), plan.concurrencies)),
    ]
    if outcome.calibration:
        known, counted = outcome.calibration
        lines.append(f"\ncounting check: {known} known PostgreSQL transactions, counted {counted}")
    if outcome.memory:
        memory = outcome.memory
        every = max(1, len(memory.curve) // 6)
        points = [*memory.curve[:-1:every], memory.curve[-1]]
        curve = " -> ".join(f"{rss:.0f}" for _, rss, _ in points)
        lines.append(
            f"memory run: {memory.target} fresh threads in {memory.seconds:.0f} s, "
            f"RSS {curve} MiB, SQLite {memory.curve[-1][2]:.0f} MiB"
        )
    if outcome.cold_start:
        runs = ", ".join(f"{s:.2f}" for s in outcome.cold_start.runs_s)
        lines.append(f"cold start runs: {runs} s")
    starts = ", ".join(f"{name} {s:.1f}" for name, s in outcome.starts_s.items())
    lines.append(f"spawn to first answer: {starts} s")
    lines.extend(f"note: {note}" for note in outcome.notes)
    lines.append(
        f"wall time {outcome.wall_s:.0f} s (of which {outcome.idle_waits_s:.0f} s idle, "
        "waiting for PostgreSQL's counts)"
    )
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run, print, write."""
    args = _parser().parse_args()
    plan = (QUICK if args.quick else FULL).with_overrides(
        requests=args.requests,
        duration=args.duration,
        repeats=args.repeats,
        fresh_threads=args.threads,
        flat_turns=args.flat_turns,
        flat_threads=args.flat_threads,
        long_threads=args.long_threads,
        long_turns=args.long_turns,
        cold_starts=args.cold_starts,
        concurrencies=tuple(args.concurrency) if args.concurrency else None,
    )
    options = Options(
        plan=plan,
        admin_url=args.postgres,
        database=args.database,
        redis_url=args.redis,
        redis_prefix=args.redis_prefix,
        peers=args.peers,
        cache=ROOT / ".bench" / "peers",
        log_level=args.log_level,
    )
    outcome = run(options)
    rows = rows_of(outcome)
    document = to_json(outcome, rows, goals(rows, measured(outcome), plan.concurrencies))
    path = args.json or ROOT / ".bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    write(path, document)
    print(report(outcome))  # noqa: T201 - the benchmark's output
    print(f"results: {path}", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
