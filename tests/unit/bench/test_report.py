"""The report: medians of repeats, the table, the ratios and goals."""

from __future__ import annotations

from typing import Any

from bench.goals import Measured, goals
from bench.growth import Growth, Window
from bench.report import Goal, cpu_ratio, format_goals, format_table, summarize
from bench.series import SeriesRun


def run(target: str, config: Any = "stateless", **figures: Any) -> SeriesRun:
    values: dict[str, Any] = {
        "target": target,
        "config": config,
        "stream": False,
        "concurrency": 8,
        "repeat": 0,
        "requests": 100,
        "errors": 0,
        "first_error": None,
        "rps": 100.0,
        "p50_ms": 10.0,
        "p99_ms": 20.0,
        "ttft_p50_ms": None,
        "cpu_ms": 5.0,
        "upstream_cpu_ms": 0.5,
        "rss_mib": 100.0,
    }
    values.update(figures)
    return SeriesRun(**values)


def test_summarize_takes_the_median_of_the_repeats() -> None:
    runs = [
        run("service", cpu_ms=6.0, rps=90.0, repeat=0, errors=1),
        run("service", cpu_ms=9.0, rps=10.0, repeat=1),
        run("service", cpu_ms=7.0, rps=95.0, repeat=2),
        run("floor", cpu_ms=2.0),
    ]
    rows = summarize(runs, {("service", "stateless"): 13.0})
    assert [row.target for row in rows] == ["service", "floor"]
    service = rows[0]
    assert (service.cpu_ms, service.rps, service.repeats) == (7.0, 90.0, 3)
    assert (service.requests, service.errors) == (300, 1)
    assert service.tx_per_turn == 13.0
    assert rows[1].tx_per_turn is None
    assert cpu_ratio(rows, "service", "floor", "stateless", False, 8) == 3.5
    assert cpu_ratio(rows, "service", "litellm", "stateless", False, 8) is None


def test_summarize_keeps_checkpoint_rows_by_table() -> None:
    runs = [
        run("service-pg", "fresh", rows={"checkpoints": 6.0, "writes": 20.0}),
        run("service-pg", "fresh", rows={"checkpoints": 4.0, "writes": 10.0}),
    ]
    (row,) = summarize(runs)
    assert row.rows == {"checkpoints": 5.0, "writes": 15.0}


def test_table_has_one_aligned_line_per_series() -> None:
    rows = summarize([run("service", cpu_ms=6.25), run("direct", cpu_ms=None, rss_mib=None)])
    lines = format_table(rows).splitlines()
    assert len(lines) == 4
    assert len({len(line) for line in lines}) == 1  # every line as wide as the head
    assert "6.25" in lines[2]
    assert lines[2].startswith("service ")
    assert lines[3].startswith("direct to upstream")
    assert " - " in lines[3]  # no CPU for the direct call


def test_goals_compare_with_the_floor_and_say_whether_they_are_met() -> None:
    rows = summarize(
        [
            run("service", cpu_ms=2.5, concurrency=1),
            run("floor", cpu_ms=2.0, concurrency=1),
            run("service-pg", "fresh", cpu_ms=9.0, concurrency=1),
            run("floor-pg", "fresh", cpu_ms=3.0, concurrency=1),
            run("direct", p50_ms=1.0, concurrency=1),
        ]
    )
    flat = Growth(
        "service-pg", 4, 1, 200, 0, None, 1.0, (Window(2, 11, 10, 1), Window(191, 200, 20, 1))
    )
    measured = Measured(
        tx_per_turn={("service-pg", "fresh"): 12.0, ("floor-pg", "fresh"): 6.0},
        flatness=[flat],
        cold_start_s=1.2,
        idle_rss_mib=160.0,
        threads_rss_mib=None,
        threads=0,
    )
    by_text = {goal.what: goal for goal in goals(rows, measured, [1])}
    stateless = by_text["CPU/req service / one-node graph, stateless, json C=1"]
    assert (stateless.value, stateless.met) == (1.25, True)
    fresh = by_text["CPU/req service + PG/Redis / one-node + PostgresSaver, fresh thread, json C=1"]
    assert (fresh.value, fresh.met) == (3.0, False)
    assert by_text["added p50 at C=1 over direct, service stateless json"].value == 9.0
    tx = by_text["PG transactions/turn service / floor, fresh thread (12.0 vs 6.0)"]
    assert (tx.value, tx.met) == (2.0, False)
    (flat_goal,) = [g for g in by_text.values() if g.what.startswith("CPU/turn 191-200")]
    assert (flat_goal.value, flat_goal.met) == (2.0, False)
    assert by_text["cold start, service on defaults"].met is True
    assert by_text["idle RSS after warm-up"].met is False
    assert by_text["RSS after 0 fresh threads"].met is None
    assert not any("p99/p50" in text for text in by_text)  # no C=8 in this run


def test_a_goal_to_reach_at_least_and_the_printed_lines() -> None:
    lines = [
        Goal("throughput vs LiteLLM", 2.0, 2.2, at_least=True),
        Goal("ratio", 1.0, 1.3),
        Goal("informative", 4.0),
        Goal("not measured", None, 1.5, "s"),
    ]
    assert [goal.met for goal in lines] == [False, True, None, None]
    text = format_goals(lines).splitlines()
    assert text[0].endswith("goal >= 2.2x     NOT met")
    assert text[1].endswith("goal <= 1.3x     met")
    assert text[2].rstrip().endswith("4.00x")
    assert "   -  goal <= 1.5s" in text[3]
