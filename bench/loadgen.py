"""A closed-loop load generator: C workers, each on its own keep-alive connection.

Each worker sends its next request the moment the previous answer is read.

The requests are split evenly between the workers up front (worker w sends n // C, the
first n % C one more), so a `ThreadPool` grows each thread by exactly the turns asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.payloads import Endpoint, RequestSource
from bench.wire import Answer, Connection, ProtocolError

__all__ = ["LoadResult", "closed_loop", "run_loop", "split"]

T = TypeVar("T")

#: Seconds one request may take before it counts as an error.
REQUEST_TIMEOUT = 60.0


@dataclass
class LoadResult:
    """What one closed-loop run saw.

    Attributes:
        latencies_ms: Of each successful request, request written to answer read.
        ttfts_ms: Of each successful streamed request, to its first content delta.
        errors: Requests that failed (status, protocol, connection, wrong content).
        first_error: What the first failure was.
        wall_s: From the first request sent to the last answer read.
    """

    latencies_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    wall_s: float = 0.0

    @property
    def completed(self) -> int:
        """Successful requests."""
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        """Successful requests per second of wall time."""
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    def failed(self, reason: str) -> None:
        """Count one failure."""
        self.errors += 1
        if self.first_error is None:
            self.first_error = reason


def split(requests: int, concurrency: int) -> list[int]:
    """How many of `requests` each of `concurrency` workers sends."""
    base, extra = divmod(requests, concurrency)
    return [base + (1 if w < extra else 0) for w in range(concurrency)]


def _check(answer: Answer, expect: str | None) -> str | None:
    """Why `answer` is not a success (None: it is)."""
    if answer.status != 200:
        return f"HTTP {answer.status}: {answer.body[:300]!r}"
    if expect is not None and answer.content.strip() != expect:
        return f"unexpected content {answer.content[:200]!r}"
    if expect is None and not answer.content:
        return "empty content"
    return None


async def closed_loop(
    endpoint: Endpoint,
    source: RequestSource,
    concurrency: int,
    requests: int,
    *,
    expect: str | None = None,
    connections: list[Connection] | None = None,
    duration: float | None = None,
    at_least: int = 0,
) -> LoadResult:
    """Send `requests` requests from `concurrency` workers and time them.

    Args:
        endpoint: Where to connect.
        source: Each worker's next request.
        concurrency: Workers (and connections).
        requests: Requests in all.
        expect: The content every answer must have (None: any non-empty content).
        connections: Connections to reuse (one per worker, kept open); else new ones,
            closed at the end.
        duration: Seconds after which workers send nothing more (None: no limit)...
        at_least: ...once `at_least` requests were sent in all.
    """
    conns = connections or [Connection(endpoint.host, endpoint.port) for _ in range(concurrency)]
    if len(conns) < concurrency:
        raise ValueError(f"{len(conns)} connections for {concurrency} workers")
    result = LoadResult()

    began = time.perf_counter()
    deadline = began + duration if duration is not None else float("inf")
    sent = 0

    async def worker(index: int, count: int) -> None:
        nonlocal sent
        conn = conns[index]
        for _ in range(count):
            if sent >= at_least and time.perf_counter() > deadline:
                return
            sent += 1
            request = source.next(index)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    answer = await conn.exchange(request, stream=source.stream)
            except (OSError, TimeoutError, ProtocolError, asyncio.IncompleteReadError) as error:
                result.failed(f"{type(error).__name__}: {error}")
                continue
            reason = _check(answer, expect)
            if reason is not None:
                result.failed(reason)
                continue
            result.latencies_ms.append(answer.latency_ms)
            if answer.ttft_ms is not None:
                result.ttfts_ms.append(answer.ttft_ms)

    try:
        await asyncio.gather(
            *(worker(w, n) for w, n in enumerate(split(requests, concurrency)) if n)
        )
    finally:
        result.wall_s = time.perf_counter() - began
        if connections is None:
            await asyncio.gather(*(conn.close() for conn in conns))
    return result


def run_loop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on uvloop when it is installed (cheaper per request), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())
