"""The benchmark's load generator against a real spawned service (`python -m server` on
PostgreSQL and Redis): a handful of requests, and figures that make sense."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from bench.loadgen import run_loop
from bench.payloads import Endpoint, FreshThreads
from bench.pg import BenchDatabases
from bench.pinning import pinning
from bench.series import measure
from bench.systems import Systems
from bench.upstream import MODEL, REPLY_TEXT
from tests.conftest import ADMIN_DSN
from tests.fakes.upstream import FakeUpstream, Reply

REQUESTS = 8


def _wait_disconnected(database: str, timeout: float = 10.0) -> None:
    """Until no session is left on `database` (each published its counts as it ended)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError(f"sessions still on {database}")


@pytest.mark.postgres
@pytest.mark.redis
def test_a_fresh_thread_series_on_the_service_gives_sane_figures(
    primary: FakeUpstream,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    primary.default = Reply(REPLY_TEXT)
    database = postgres_url.rsplit("/", 1)[1]
    dbs = BenchDatabases(ADMIN_DSN)
    systems = Systems(tmp_path, pinning(), primary.openai_base_url)
    service = systems.service_memory(postgres_url, redis_url, redis_prefix)
    with service:
        endpoint = Endpoint(service.name, "127.0.0.1", service.port, MODEL, service.pid)
        source = FreshThreads(endpoint, "it-", stream=True)
        run = run_loop(
            lambda: measure(
                endpoint,
                source,
                config="fresh",
                concurrency=2,
                requests=REQUESTS,
                upstream_pid=os.getpid(),  # the fake upstream runs in this process
                expect=REPLY_TEXT,
            )
        )
    _wait_disconnected(database)  # the service stopped: its sessions published their counts

    assert (run.requests, run.errors) == (REQUESTS, 0), run.first_error
    assert run.rps > 0
    assert 0 < (run.p50_ms or 0) <= (run.p99_ms or 0)
    assert 0 < (run.ttft_p50_ms or 0) <= (run.p99_ms or 0)
    assert (run.cpu_ms or 0) > 0
    assert (run.rss_mib or 0) > 50
    # Every turn (warm-up ones too) wrote its own thread, in transactions of its own.
    assert source.sent == REQUESTS + 2
    assert dbs.transactions(database) >= source.sent
    rows = dbs.checkpoint_rows(database, "it-")
    assert rows.checkpoints >= source.sent
    assert rows.blobs > 0
