"""One series: a closed-loop run against one system, with what it cost that system.

Around the measured requests (after a warm-up on the same connections): the target's CPU
time (utime + stime from `/proc`, so all its threads) and the fake upstream's, the target's
resident memory at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bench.loadgen import closed_loop
from bench.payloads import Endpoint, RequestSource
from bench.procfs import CpuSample, rss_mib
from bench.stats import percentile
from bench.wire import Connection

__all__ = ["Config", "SeriesRun", "measure"]

Config = Literal["stateless", "fresh", "long"]
"""(a) no thread; (b) a new thread per request; (c) grown threads, one message appended."""


@dataclass
class SeriesRun:
    """The figures of one run of one series.

    Attributes:
        target: The system (`service`, `floor`, `direct`, `litellm`, ...).
        config: The configuration of the requests.
        stream: Streamed answers.
        concurrency: Workers of the closed loop.
        repeat: Which repeat this was (0-based).
        requests: Successful measured requests.
        errors: Failed ones (with `first_error`).
        rps: Successful requests per second.
        p50_ms: Median latency.
        p99_ms: 99th percentile latency.
        ttft_p50_ms: Median time to the first content token (streams).
        cpu_ms: Target CPU ms per request (None: no process of ours in between).
        upstream_cpu_ms: The fake upstream's CPU ms per request.
        rss_mib: The target's resident memory after the series.
        rows: Checkpointer rows per turn by table, when counted.
        turns: Shortest and longest thread before and after (long threads).
    """

    target: str
    config: Config
    stream: bool
    concurrency: int
    repeat: int
    requests: int
    errors: int
    first_error: str | None
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    cpu_ms: float | None
    upstream_cpu_ms: float
    rss_mib: float | None
    rows: dict[str, float] = field(default_factory=dict)
    turns: tuple[int, int] | None = None


async def measure(
    endpoint: Endpoint,
    source: RequestSource,
    *,
    config: Config,
    concurrency: int,
    requests: int,
    upstream_pid: int,
    repeat: int = 0,
    warmup: int | None = None,
    duration: float | None = None,
    at_least: int = 0,
    expect: str | None = None,
) -> SeriesRun:
    """Warm up, then run `requests` requests (or `duration` seconds) and take the figures.

    Args:
        endpoint: The system under load.
        source: Its requests.
        config: What the requests are (for the report).
        concurrency: Workers.
        requests: Measured requests at most.
        upstream_pid: The fake upstream's process.
        repeat: Which repeat this is.
        warmup: Requests before measuring (default: one per worker, at least 2).
        duration: Seconds after which no more requests are sent...
        at_least: ...once this many were sent.
        expect: The content every answer must have.
    """
    conns = [Connection(endpoint.host, endpoint.port) for _ in range(concurrency)]
    try:
        await closed_loop(
            endpoint,
            source,
            concurrency,
            warmup if warmup is not None else max(2, concurrency),
            expect=expect,
            connections=conns,
        )
        target_cpu = CpuSample.now(endpoint.pid) if endpoint.pid is not None else None
        upstream_cpu = CpuSample.now(upstream_pid)
        load = await closed_loop(
            endpoint,
            source,
            concurrency,
            requests,
            expect=expect,
            connections=conns,
            duration=duration,
            at_least=at_least,
        )
        spent = target_cpu.since() if target_cpu is not None else None
        upstream_spent = upstream_cpu.since()
    finally:
        for conn in conns:
            await conn.close()
    done = max(load.completed, 1)
    latencies = load.latencies_ms
    return SeriesRun(
        target=endpoint.name,
        config=config,
        stream=source.stream,
        concurrency=concurrency,
        repeat=repeat,
        requests=load.completed,
        errors=load.errors,
        first_error=load.first_error,
        rps=load.rps,
        p50_ms=percentile(latencies, 50) if latencies else None,
        p99_ms=percentile(latencies, 99) if latencies else None,
        ttft_p50_ms=percentile(load.ttfts_ms, 50) if load.ttfts_ms else None,
        cpu_ms=spent / done if spent is not None else None,
        upstream_cpu_ms=upstream_spent / done,
        rss_mib=rss_mib(endpoint.pid) if endpoint.pid is not None else None,
    )
