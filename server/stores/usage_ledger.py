"""The usage ledger: counts every model call in memory at once, and writes it in the background.

A turn never waits for the database, and never fails because of it: `record` is a few
dictionary updates; a background task adds what was recorded to the `usage` table
(`server.stores.usage_table`) about once a second, in one transaction for everything recorded
meanwhile. When the database is down, the writes are kept (merged, so memory stays bounded
by keys x aliases x providers x hours) and tried again with a growing pause; each failure is
logged and counted (`agent_usage_store_errors_total`). At shutdown what is left is written.

What a replica can lose: the last second of calls on `kill -9`. What it can count twice: a
batch whose commit succeeded while the connection broke before PostgreSQL said so (it is
written again). Both are rare and small against a month's totals.

Budgets (`month_spent`) need a key's usage this month across every replica. Each replica
reads the key's month from the table at most every USAGE_CACHE_SECONDS (in the background
once it has a reading) and adds what it recorded itself since then, so its own calls count
at once and the other replicas' calls within that delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from langgraph.checkpoint.base import BaseCheckpointSaver

from server.settings import Settings
from server.stores.checkpointer import connection_pool
from server.stores.usage_table import (
    STORE_ERRORS,
    Amount,
    UsageKey,
    UsageStore,
    UsageTotal,
    hour_of,
    month_start,
    next_month,
    open_postgres_usage_store,
    open_sqlite_usage_store,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ErrorCounter = Callable[[str], None]
"""Told `write` or `read` for every failed store operation (the metrics count them)."""

FLUSH_INTERVAL: Final = 1.0
"""Seconds the writer gathers calls before one transaction writes them."""
MAX_RETRY_PAUSE: Final = 30.0
"""Longest pause between writes while the database keeps failing."""
FIRST_READ_TIMEOUT: Final = 1.0
"""Seconds a request waits for a key's first read of the month before it goes on without."""


def utc_now() -> datetime:
    """The current time in UTC (the ledger's default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ModelCall:
    """One answered model call, as it is counted."""

    key_id: str
    model: str
    """The alias the client asked for."""
    provider: str
    """The provider target (`endpoint:model`) that answered."""
    input_tokens: int
    output_tokens: int
    cost_usd: float
    """At the endpoint's price; 0 when the endpoint has none."""


@dataclass(frozen=True)
class _Reading:
    """A key's month as read from the store, and what this replica had written by then."""

    month: datetime
    stored: Amount
    written_then: Amount
    at: float
    """`time.monotonic()` of the read."""


class UsageLedger:
    """Counts model calls per key, alias, provider and hour; writes them; answers budgets.

    Args:
        store: Where usage is kept.
        clock: Now, in UTC (tests move it to another month).
        cache_seconds: How long a key's month read from the store is trusted.
        on_error: Counts a failed store operation (`write`, `read`).
        flush_interval: Seconds between writes.
    """

    def __init__(
        self,
        store: UsageStore,
        *,
        clock: Clock = utc_now,
        cache_seconds: float = 5.0,
        on_error: ErrorCounter | None = None,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.store = store
        self.clock = clock
        self._cache_seconds = cache_seconds
        self._on_error: list[ErrorCounter] = [on_error] if on_error is not None else []
        self._flush_interval = flush_interval
        self._pending: dict[UsageKey, Amount] = {}
        self._recorded: dict[tuple[str, datetime], Amount] = {}
        """All this replica recorded, per key and month."""
        self._written: dict[tuple[str, datetime], Amount] = {}
        """The part of `_recorded` that is committed to the store."""
        self._readings: dict[str, _Reading] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        """Held while writing or reading a month: a read never misses a batch in flight."""
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def add_error_counter(self, counter: ErrorCounter) -> None:
        """Have `counter` told about every failed store operation (the metrics use this)."""
        self._on_error.append(counter)

    # --- recording --------------------------------------------------------------------

    def record(self, call: ModelCall) -> None:
        """Count one call now (the background writer stores it); never blocks, never raises."""
        now = self.clock()
        key = UsageKey(call.key_id, hour_of(now), call.model, call.provider)
        amount = Amount(1, call.input_tokens, call.output_tokens, call.cost_usd)
        self._pending[key] = self._pending.get(key, Amount()) + amount
        month = (call.key_id, month_start(now))
        self._recorded[month] = self._recorded.get(month, Amount()) + amount
        self._wake.set()

    async def flush(self) -> bool:
        """Write everything recorded so far; False (and kept for later) when the store failed."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return True
            try:
                await self.store.add(batch)
            except STORE_ERRORS as error:
                self._keep(batch)
                self._failed("write", error)
                return False
            except asyncio.CancelledError:  # shutdown: the transaction was rolled back
                self._keep(batch)
                raise
            for key, amount in batch.items():
                month = (key.key_id, month_start(key.hour))
                self._written[month] = self._written.get(month, Amount()) + amount
            return True

    def _keep(self, batch: dict[UsageKey, Amount]) -> None:
        """Put a batch that was not written back with what was recorded since."""
        for key, amount in batch.items():
            self._pending[key] = self._pending.get(key, Amount()) + amount

    def start(self) -> None:
        """Start the background writer (in the lifespan, on the serving loop)."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="usage-writer")
            self._writer.add_done_callback(_report_writer_end)

    async def aclose(self) -> None:
        """Stop the writer and write what is left (tried once: a dead database fails it)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        reads = list(self._refreshing.values())
        for task in reads:
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
        if not await self.flush():
            logger.error("usage: %d row(s) could not be written at shutdown", len(self._pending))

    async def _write_loop(self) -> None:
        pause = self._flush_interval
        while True:
            await self._wake.wait()
            await asyncio.sleep(pause)
            self._wake.clear()
            if await self.flush():
                pause = self._flush_interval
            else:
                pause = min(max(pause, 0.5) * 2, MAX_RETRY_PAUSE)
                self._wake.set()

    # --- reading ----------------------------------------------------------------------

    async def totals(
        self, *, since: datetime, until: datetime | None, key_id: str | None
    ) -> list[UsageTotal]:
        """A report from the store, with this replica's latest calls written first.

        Raises:
            psycopg.Error | sqlite3.Error: The store could not be read.
        """
        await self.flush()
        try:
            return await self.store.totals(since=since, until=until, key_id=key_id)
        except STORE_ERRORS as error:
            self._failed("read", error)
            raise

    async def month_spent(self, key_id: str) -> Amount:
        """What the key used this calendar month (UTC), on every replica (see the module doc).

        Quick: from memory, with a read of the store at most every `cache_seconds`, in the
        background once a first read is there. While the store cannot be read, the last
        reading (or none) plus this replica's own calls is the answer.
        """
        month = month_start(self.clock())
        reading = self._readings.get(key_id)
        if reading is None or reading.month != month:
            task = self._refresh(key_id, month)
            await asyncio.wait({task}, timeout=FIRST_READ_TIMEOUT)
            reading = self._readings.get(key_id)
        elif time.monotonic() - reading.at >= self._cache_seconds:
            self._refresh(key_id, month)
        recorded = self._recorded.get((key_id, month), Amount())
        if reading is None or reading.month != month:
            return recorded
        return reading.stored + recorded - reading.written_then

    def _refresh(self, key_id: str, month: datetime) -> asyncio.Task[None]:
        """Read the key's month from the store in a task of its own (one per key at a time)."""
        running = self._refreshing.get(key_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self._read_month(key_id, month), name="usage-read")
        self._refreshing[key_id] = task
        return task

    async def _read_month(self, key_id: str, month: datetime) -> None:
        async with self._lock:
            written = self._written.get((key_id, month), Amount())
            try:
                rows = await self.store.totals(since=month, until=next_month(month), key_id=key_id)
            except STORE_ERRORS as error:
                self._failed("read", error)
                return
        stored = sum((row.amount for row in rows), Amount())
        self._readings[key_id] = _Reading(month, stored, written, time.monotonic())
        self._forget_before(month)

    def _forget_before(self, month: datetime) -> None:
        """Drop the per-month sums of months that ended (they no longer matter to budgets)."""
        for sums in (self._recorded, self._written):
            for old in [k for k in sums if k[1] < month]:
                del sums[old]

    def _failed(self, operation: str, error: Exception) -> None:
        logger.warning(
            "usage store %s failed (%s: %s); the service goes on, usage is kept in memory",
            operation,
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
        )
        for count in self._on_error:
            count(operation)


def _report_writer_end(task: asyncio.Task[None]) -> None:
    """A writer that died of a bug would stop usage silently: say so loudly."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("usage writer stopped: usage is no longer written", exc_info=task.exception())


@asynccontextmanager
async def open_usage_ledger(
    settings: Settings, saver: BaseCheckpointSaver[Any]
) -> AsyncIterator[UsageLedger]:
    """The ledger over the checkpointer's database, its writer running; flushed on exit.

    PostgreSQL: the saver's own pool (usage needs no connections of its own). SQLite: the
    checkpoint file, on a connection of the ledger's own. Open it inside the checkpointer, so
    the last write happens before the pool closes.
    """
    pool = connection_pool(saver)
    async with contextlib.AsyncExitStack() as stack:
        store: UsageStore
        if pool is not None:
            store = await open_postgres_usage_store(pool)
        else:
            store = await stack.enter_async_context(open_sqlite_usage_store(settings.sqlite_path))
        ledger = UsageLedger(store, cache_seconds=settings.usage_cache_seconds)
        ledger.start()
        try:
            yield ledger
        finally:
            await ledger.aclose()
