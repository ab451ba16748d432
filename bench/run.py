"""One benchmark run, in the order that lets PostgreSQL's counts be read correctly.

1. Fresh databases; the fake upstream on the client core; the counting check started.
2. The systems with PostgreSQL (service + PG/Redis, one-node + AsyncPostgresSaver) start
   and grow their long threads (the growth's early and late turns are measured).
3. Three transaction windows: each waits until the databases are quiet (`pg.Quiet`), reads
   the counts, runs a C=1 probe on each system (fresh threads, then long threads), and the
   next wait reads them again. While a window waits, work that never touches those
   databases runs instead of sleeping: cold starts, the stateless series (direct, one-node,
   service, LiteLLM), the memory over many threads.
4. The PostgreSQL series, with checkpoint rows counted per series; the thread-length run.

Series of the same kind run interleaved across systems and repeats, so that a slow minute
of this shared machine falls on all of them.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.growth import Growth, grow
from bench.loadgen import closed_loop, run_loop
from bench.memory import ColdStart, ThreadMemory, cold_starts
from bench.payloads import Endpoint, FreshThreads, RequestSource, Stateless, ThreadPool
from bench.peers import litellm
from bench.pg import BenchDatabases, Calibration, Quiet
from bench.pinning import Pinning, pinning
from bench.plan import Plan
from bench.series import Config, SeriesRun, measure
from bench.systems import Systems
from bench.targets import TargetProcess, start_together
from bench.upstream import MODEL, REPLY_TEXT, UpstreamProcess

__all__ = ["Options", "Outcome", "Probe", "run"]


@dataclass(frozen=True)
class Options:
    """What a run needs besides its plan.

    Attributes:
        plan: Its sizes.
        admin_url: A superuser DSN of PostgreSQL's `postgres` database.
        database: The benchmark's database name (others are named after it).
        redis_url: Redis with the benchmark's database number.
        redis_prefix: Prefix of the service's Redis keys (deleted at the start).
        peers: Measure LiteLLM's proxy too (BENCH_PEERS=1).
        cache: Where comparators are installed.
        log_level: The service's LOG_LEVEL (None: its default).
    """

    plan: Plan
    admin_url: str
    database: str
    redis_url: str
    redis_prefix: str
    peers: bool
    cache: Path
    log_level: str | None = None


@dataclass(frozen=True)
class Probe:
    """Transactions of `turns` turns of one system at C=1."""

    target: str
    config: str
    turns: int
    transactions: int
    errors: int

    @property
    def per_turn(self) -> float:
        """Transactions per turn."""
        return self.transactions / self.turns if self.turns else 0.0


@dataclass
class Outcome:
    """Everything one run measured (`results.to_json` writes it)."""

    plan: Plan
    pinning: str
    series: list[SeriesRun] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    calibration: tuple[int, int] | None = None
    growth: list[Growth] = field(default_factory=list)
    cold_start: ColdStart | None = None
    memory: ThreadMemory | None = None
    starts_s: dict[str, float] = field(default_factory=dict)
    idle_waits_s: float = 0.0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def tx_per_turn(self) -> dict[tuple[str, str], float]:
        """By (target, config)."""
        return {(p.target, p.config): p.per_turn for p in self.probes}


def _endpoint(target: TargetProcess) -> Endpoint:
    return Endpoint(target.name, "127.0.0.1", target.port, MODEL, target.pid, target.headers)


@dataclass
class LongThreads:
    """The long threads of one system: their ids (all starting with `tag`), turns so far."""

    tag: str
    ids: list[str]
    turns: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, tag: str, count: int) -> LongThreads:
        """`count` thread ids starting with `tag`."""
        return cls(tag, [f"{tag}{i:03d}-{uuid.uuid4().hex[:12]}" for i in range(count)])

    def pool(self, endpoint: Endpoint, concurrency: int, *, stream: bool) -> ThreadPool:
        """A source appending to these threads (their turns are counted here)."""
        return ThreadPool(endpoint, self.ids, concurrency, stream=stream, turns=self.turns)

    def span(self) -> tuple[int, int]:
        """The shortest and longest thread, in turns."""
        values = [self.turns.get(t, 0) for t in self.ids]
        return (min(values), max(values))


class Bench:
    """One run; `execute` does it all (see the module docstring)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.plan = options.plan
        self.pin: Pinning = pinning()
        self.outcome = Outcome(options.plan, self.pin.note)
        self.dbs = BenchDatabases(options.admin_url, options.database)
        self.quiet = Quiet()
        self.jobs: deque[Callable[[], None]] = deque()
        self.upstream_pid = 0
        self.began = time.monotonic()

    def say(self, text: str) -> None:
        """One line on stderr while the run goes on, with the seconds since the start."""
        elapsed = time.monotonic() - self.began
        print(f"[{elapsed:6.1f}s] {text}", file=sys.stderr, flush=True)  # noqa: T201 - progress

    # ------------------------------------------------------------------ helpers

    def series(
        self,
        endpoint: Endpoint,
        source: RequestSource,
        config: Config,
        concurrency: int,
        repeat: int,
        *,
        exactly: int | None = None,
    ) -> SeriesRun:
        """Run one series and keep it.

        `exactly` that many requests, without a warm-up, when given (the long threads), else
        the plan's limits.
        """
        plan = self.plan
        run = run_loop(
            lambda: measure(
                endpoint,
                source,
                config=config,
                concurrency=concurrency,
                requests=exactly if exactly is not None else plan.requests,
                warmup=0 if exactly is not None else None,
                duration=None if exactly is not None else plan.duration,
                at_least=min(plan.requests, plan.at_least * concurrency),
                upstream_pid=self.upstream_pid,
                repeat=repeat,
                expect=REPLY_TEXT,
            )
        )
        self.outcome.series.append(run)
        cpu = "-" if run.cpu_ms is None else f"{run.cpu_ms:.2f}"
        self.say(
            f"  {endpoint.name:<11} {config:<9} {'stream' if run.stream else 'json':<6} "
            f"C={concurrency:<2} #{repeat}: {run.rps:7.1f} req/s, CPU {cpu} ms/req"
            + (f", {run.errors} errors ({run.first_error})" if run.errors else "")
        )
        return run

    def start_all(self, stack: ExitStack, targets: list[TargetProcess]) -> None:
        """Start the systems together (kept until the end of the run)."""
        self.say(f"starting {', '.join(target.name for target in targets)}")
        start_together(targets, self.pin)
        for target in targets:
            stack.callback(target.stop)
            assert target.cold_start_s is not None
            self.outcome.starts_s[target.name] = target.cold_start_s

    def run_job(self) -> bool:
        """Run the next job that leaves PostgreSQL alone; False when there is none."""
        if not self.jobs:
            return False
        self.jobs.popleft()()
        return True

    def wait_quiet(self, *databases: str) -> None:
        """Wait until the databases are quiet, doing other work meanwhile."""
        self.outcome.idle_waits_s += self.quiet.wait(*databases, meanwhile=self.run_job)

    def probe(self, endpoint: Endpoint, source: RequestSource, config: str) -> Probe:
        """Run the probe's turns at C=1; its count is read after the next wait."""
        load = run_loop(
            lambda: closed_loop(endpoint, source, 1, self.plan.probe_turns, expect=REPLY_TEXT)
        )
        return Probe(endpoint.name, config, self.plan.probe_turns, 0, load.errors)

    # ------------------------------------------------------------------ the run

    def execute(self) -> Outcome:
        """Run everything and return what was measured."""
        self.began = time.monotonic()
        self.pin.pin_this_process()
        if self.pin.taskset is None:
            self.outcome.notes.append(self.pin.note)
        self.dbs.recreate()
        self._clear_redis()
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            upstream = stack.enter_context(UpstreamProcess(workdir / "upstream", self.pin))
            self.upstream_pid = upstream.pid
            systems = Systems(workdir, self.pin, upstream.openai_base_url, self.options.log_level)
            calibration = Calibration(self.dbs, self.plan.known_transactions)
            calibration.start()
            self.quiet.touched(self.dbs.calib)

            service_memory = systems.service_memory(
                self.dbs.url(self.dbs.service), self.options.redis_url, self.options.redis_prefix
            )
            targets = [
                service_memory,
                systems.floor(self.dbs.url(self.dbs.floor)),
                systems.floor(),
                systems.service(),
            ]
            if self.options.peers:
                self.say(f"LiteLLM {litellm.VERSION} (installed into {self.options.cache} once)")
                targets.append(systems.litellm(self.options.cache))
            self.start_all(stack, targets)
            service_pg, floor_pg, *stateless = (_endpoint(target) for target in targets)
            long_threads = {
                service_pg.name: LongThreads.new("long-service-", self.plan.long_threads),
                floor_pg.name: LongThreads.new("long-floor-", self.plan.long_threads),
            }
            for endpoint in (floor_pg, service_pg):
                self._grow_long(endpoint, long_threads[endpoint.name])
            self.quiet.touched(self.dbs.service, self.dbs.floor)

            self._queue_stateless(stack, systems, upstream, stateless)
            self._queue_memory()

            self._transaction_windows(calibration, service_pg, floor_pg, long_threads)
            while self.run_job():
                pass
            self._pg_series(service_pg, floor_pg, long_threads)
            if self.plan.flat_threads:
                for endpoint in (floor_pg, service_pg):
                    self._flatness(endpoint)
            self.say("stopping")
        self.outcome.wall_s = time.monotonic() - self.began
        return self.outcome

    def _clear_redis(self) -> None:
        client = redis.Redis.from_url(self.options.redis_url, socket_connect_timeout=2)
        with client:
            keys = list(client.scan_iter(f"{self.options.redis_prefix}:*", count=1000))
            if keys:
                client.delete(*keys)

    def _grow_long(self, endpoint: Endpoint, threads: LongThreads) -> None:
        concurrency = min(max(self.plan.concurrencies), self.plan.long_threads)
        self.say(
            f"growing {len(threads.ids)} threads of {endpoint.name} to "
            f"{self.plan.long_turns} turns (C={concurrency})"
        )
        growth = run_loop(
            lambda: grow(
                endpoint,
                threads.pool(endpoint, concurrency, stream=False),
                threads=len(threads.ids),
                concurrency=concurrency,
                turns=self.plan.long_turns,
                windows=self.plan.growth_windows,
                expect=REPLY_TEXT,
            )
        )
        self.outcome.growth.append(growth)
        if growth.errors:
            self.outcome.notes.append(
                f"growing {endpoint.name}'s long threads: {growth.errors} errors "
                f"({growth.first_error})"
            )

    def _queue_stateless(
        self,
        stack: ExitStack,
        systems: Systems,
        upstream: UpstreamProcess,
        stateless: list[Endpoint],
    ) -> None:
        """The cold starts and the stateless series, as jobs."""
        endpoints = [Endpoint("direct", "127.0.0.1", upstream.port, MODEL, None), *stateless]

        def cold() -> None:
            self.say(f"cold start of the service on its defaults, {self.plan.cold_starts} runs")
            timings, last = cold_starts(systems.service_defaults, self.plan.cold_starts)
            stack.callback(last.stop)
            self.outcome.cold_start = timings
            memory = ThreadMemory(
                Endpoint(last.name, "127.0.0.1", last.port, "offline", last.pid),
                self.plan.fresh_threads,
                store=last.workdir / "data" / "checkpoints.sqlite",
            )
            memory.warm_up()
            self.outcome.memory = memory

        def round_of(repeat: int, stream: bool, concurrency: int) -> Callable[[], None]:
            def job() -> None:
                for endpoint in endpoints:
                    source = Stateless(endpoint, stream=stream)
                    self.series(endpoint, source, "stateless", concurrency, repeat)

            return job

        self.jobs.append(cold)
        for repeat in range(self.plan.repeats):
            for stream in (False, True):
                for concurrency in self.plan.concurrencies:
                    self.jobs.append(round_of(repeat, stream, concurrency))

    def _queue_memory(self) -> None:
        """The fresh threads of the memory run, a step per job."""

        def step() -> None:
            memory = self.outcome.memory
            if memory is None:
                return
            if memory.step():
                done, rss, store = memory.curve[-1]
                self.say(f"  memory: {done} threads, RSS {rss:.0f} MiB, SQLite {store:.0f} MiB")
                self.jobs.appendleft(step)

        self.jobs.append(step)

    def _transaction_windows(
        self,
        calibration: Calibration,
        service_pg: Endpoint,
        floor_pg: Endpoint,
        long_threads: dict[str, LongThreads],
    ) -> None:
        dbs = self.dbs
        databases = {service_pg.name: dbs.service, floor_pg.name: dbs.floor}
        self.say("window 1: waiting for PostgreSQL's counts (meanwhile: other work)")
        self.wait_quiet(dbs.calib, dbs.service, dbs.floor)
        counted = calibration.finish()
        self.outcome.calibration = (self.plan.known_transactions, counted)
        if counted != self.plan.known_transactions:
            self.outcome.notes.append(
                f"counting check: {self.plan.known_transactions} known transactions counted "
                f"as {counted}: the transaction figures are suspect"
            )
        for config in ("fresh", "long"):
            before = {name: dbs.transactions(db) for name, db in databases.items()}
            probes: list[Probe] = []
            for endpoint in (service_pg, floor_pg):
                source: RequestSource
                if config == "fresh":
                    source = FreshThreads(endpoint, f"probe-{endpoint.name}-", stream=False)
                else:
                    source = long_threads[endpoint.name].pool(endpoint, 1, stream=False)
                probes.append(self.probe(endpoint, source, config))
            self.quiet.touched(dbs.service, dbs.floor)
            self.say(f"window {2 if config == 'fresh' else 3}: {config}-thread probes done")
            self.wait_quiet(dbs.service, dbs.floor)
            for probe in probes:
                after = dbs.transactions(databases[probe.target])
                spent = after - before[probe.target]
                self.outcome.probes.append(
                    Probe(probe.target, probe.config, probe.turns, spent, probe.errors)
                )
                self.say(f"  {probe.target} {config}: {spent / probe.turns:.2f} transactions/turn")

    def _pg_series(
        self, service_pg: Endpoint, floor_pg: Endpoint, long_threads: dict[str, LongThreads]
    ) -> None:
        dbs = self.dbs
        databases = {service_pg.name: dbs.service, floor_pg.name: dbs.floor}
        for repeat in range(self.plan.repeats):
            for stream in (False, True):
                for concurrency in self.plan.concurrencies:
                    for endpoint in (floor_pg, service_pg):
                        database = databases[endpoint.name]
                        tag = f"s-{endpoint.name}-{int(stream)}-{concurrency}-{repeat}-"
                        fresh = FreshThreads(endpoint, tag, stream=stream)
                        run = self.series(endpoint, fresh, "fresh", concurrency, repeat)
                        rows = dbs.checkpoint_rows(database, tag)
                        run.rows = rows.per(max(fresh.sent, 1))

                        threads = long_threads[endpoint.name]
                        before_rows = dbs.checkpoint_rows(database, threads.tag)
                        sent_before = sum(threads.turns.values())
                        shortest = threads.span()[0]
                        pool = threads.pool(endpoint, concurrency, stream=stream)
                        exactly = len(threads.ids) * self.plan.long_step
                        run = self.series(
                            endpoint, pool, "long", concurrency, repeat, exactly=exactly
                        )
                        after_rows = dbs.checkpoint_rows(database, threads.tag)
                        sent = max(sum(threads.turns.values()) - sent_before, 1)
                        run.rows = (after_rows - before_rows).per(sent)
                        run.turns = (shortest, threads.span()[1])

    def _flatness(self, endpoint: Endpoint) -> None:
        threads = LongThreads.new(f"flat-{endpoint.name}-", self.plan.flat_threads)
        self.say(
            f"thread length: {self.plan.flat_threads} threads of {endpoint.name} "
            f"to {self.plan.flat_turns} turns at C=1"
        )
        growth = run_loop(
            lambda: grow(
                endpoint,
                threads.pool(endpoint, 1, stream=False),
                threads=self.plan.flat_threads,
                concurrency=1,
                turns=self.plan.flat_turns,
                windows=self.plan.flat_windows,
                expect=REPLY_TEXT,
            )
        )
        self.outcome.growth.append(growth)


def run(options: Options) -> Outcome:
    """Run the benchmark."""
    return Bench(options).execute()
