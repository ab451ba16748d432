"""The pure parts of the benchmark's PostgreSQL helpers: patterns, row arithmetic, waits."""

from __future__ import annotations

import time

from bench.pg import FLUSH_WAIT, CheckpointRows, Quiet, _like_prefix


def test_a_thread_prefix_matches_literally() -> None:
    assert _like_prefix("s-service_pg-1-") == r"s-service\_pg-1-%"
    assert _like_prefix("100%") == r"100\%%"
    assert _like_prefix("a\\b") == "a\\\\b%"


def test_checkpoint_rows_per_turn_from_a_difference() -> None:
    before, after = CheckpointRows(10, 30, 5), CheckpointRows(22, 70, 25)
    assert (after - before).per(4) == {"checkpoints": 3.0, "writes": 10.0, "blobs": 5.0}


def test_quiet_runs_other_work_until_the_databases_are_quiet() -> None:
    quiet = Quiet()
    assert quiet.remaining("never-used") == 0.0
    quiet.touched("a")
    assert FLUSH_WAIT - 0.5 < quiet.remaining("a", "b") <= FLUSH_WAIT
    quiet.last["a"] = time.monotonic() - FLUSH_WAIT + 0.3  # 0.3 s left
    jobs = [0.2, 0.2, 0.2]

    def job() -> bool:
        if not jobs:
            return False
        time.sleep(jobs.pop())
        return True

    idle = quiet.wait("a", meanwhile=job)
    assert len(jobs) == 1  # two jobs filled the wait; the third was not needed
    assert idle == 0.0
    assert quiet.remaining("a") == 0.0
