"""The `usage` table: tokens, cost and model calls per (key, model alias, provider, hour).

It lives in the checkpointer's database: PostgreSQL on the checkpointer's own pool when
DATABASE_URL is set, else the SQLite checkpoint file (a connection of its own; the file is in
WAL mode, so readers never wait and the two writers take turns within the busy timeout).
Rows are aggregates, not events: one per key, alias, provider and UTC hour, grown by upserts,
so the table grows with the configured keys and aliases and the hours they are used in, not
with traffic, and a report over a month reads a few hundred rows. An hour is the finest
`since`/`until` a report can honour.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import aiosqlite
import psycopg
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

STORE_ERRORS: Final = (psycopg.Error, sqlite3.Error)
"""What a usage store raises when its database fails (PostgreSQL down, file locked, ...)."""

SQLITE_BUSY_SECONDS: Final = 5.0
"""How long a SQLite write waits for the checkpointer's write to finish."""

TABLE: Final = "usage"

# PostgreSQL's placeholders; SQLite's are the same queries with `?` (`_sqlite`).
_UPSERT: Final = """
INSERT INTO usage (hour, key_id, model, provider, requests, input_tokens, output_tokens, cost_usd)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (key_id, hour, model, provider) DO UPDATE SET
    requests = usage.requests + excluded.requests,
    input_tokens = usage.input_tokens + excluded.input_tokens,
    output_tokens = usage.output_tokens + excluded.output_tokens,
    cost_usd = usage.cost_usd + excluded.cost_usd
"""
_TOTALS: Final = """
SELECT key_id, model, SUM(requests) AS requests, SUM(input_tokens) AS input_tokens,
       SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd
FROM usage
WHERE hour >= %s AND hour < %s AND (CAST(%s AS TEXT) IS NULL OR key_id = %s)
GROUP BY key_id, model
ORDER BY key_id, model
"""
_CREATE: Final = """
CREATE TABLE IF NOT EXISTS usage (
    hour TIMESTAMPTZ NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, hour, model, provider)
)
"""


def _sqlite(query: str) -> str:
    """A query above for SQLite: `?` placeholders, hours as sortable UTC text."""
    return query.replace("%s", "?").replace("TIMESTAMPTZ", "TEXT")


#: Far enough in the future to stand for "no upper bound" in both databases.
_END_OF_TIME: Final = datetime(9999, 1, 1, tzinfo=UTC)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in: the bucket its usage is added to."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, order=True)
class UsageKey:
    """What one row adds up: a key's calls to one provider under one alias in one hour."""

    key_id: str
    hour: datetime
    model: str
    """The model alias the client asked for."""
    provider: str
    """The provider target (`endpoint:model`) that answered."""


@dataclass(frozen=True)
class Amount:
    """Model calls, tokens and dollars: the values of a row, or a sum of rows."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        """Input plus output tokens (what a token budget counts)."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Amount) -> Amount:
        return Amount(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
        )

    def __sub__(self, other: Amount) -> Amount:
        return Amount(
            self.requests - other.requests,
            self.input_tokens - other.input_tokens,
            self.output_tokens - other.output_tokens,
            self.cost_usd - other.cost_usd,
        )


@dataclass(frozen=True)
class UsageTotal:
    """One line of a report: a key's usage of one model alias over a period."""

    key_id: str
    model: str
    amount: Amount


class UsageStore(Protocol):
    """Where usage is kept; shared by every replica on the same database."""

    async def add(self, rows: Mapping[UsageKey, Amount]) -> None:
        """Add the amounts to their rows, all in one transaction.

        Raises:
            psycopg.Error | sqlite3.Error: The database failed; nothing was added.
        """
        ...

    async def totals(
        self, *, since: datetime, until: datetime | None, key_id: str | None
    ) -> list[UsageTotal]:
        """Usage per key and alias, in the hours from `since` (its hour included) to `until`.

        Raises:
            psycopg.Error | sqlite3.Error: The database failed.
        """
        ...


def _row(key: UsageKey, amount: Amount, hour: object) -> tuple[object, ...]:
    return (
        hour,
        key.key_id,
        key.model,
        key.provider,
        amount.requests,
        amount.input_tokens,
        amount.output_tokens,
        amount.cost_usd,
    )


def _total(row: Mapping[str, Any] | sqlite3.Row) -> UsageTotal:
    return UsageTotal(
        key_id=str(row["key_id"]),
        model=str(row["model"]),
        amount=Amount(
            requests=int(row["requests"]),
            input_tokens=int(row["input_tokens"]),
            output_tokens=int(row["output_tokens"]),
            cost_usd=float(row["cost_usd"]),
        ),
    )


class PostgresUsageStore:
    """The `usage` table in PostgreSQL, on the checkpointer's connection pool."""

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]) -> None:
        self._pool = pool

    async def setup(self) -> None:
        """Create the table if it is missing (at start)."""
        async with self._pool.connection() as conn:
            await conn.execute(_CREATE)

    async def add(self, rows: Mapping[UsageKey, Amount]) -> None:
        """Upsert every row in one transaction, in key order (replicas never deadlock)."""
        if not rows:
            return
        params = [_row(key, rows[key], key.hour) for key in sorted(rows)]
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_UPSERT, params)

    async def totals(
        self, *, since: datetime, until: datetime | None, key_id: str | None
    ) -> list[UsageTotal]:
        """Sums per key and alias over the hours in range."""
        end = until or _END_OF_TIME
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_TOTALS, (hour_of(since), end, key_id, key_id))
            return [_total(row) for row in await cursor.fetchall()]


def _sqlite_hour(moment: datetime) -> str:
    """Hours as sortable UTC text in SQLite (`2026-12-01 09:00:00`)."""
    # isoformat, not strftime: %Y does not pad years before 1000, and the text must sort.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


class SqliteUsageStore:
    """The `usage` table in the SQLite checkpoint file, on a connection of its own."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def setup(self) -> None:
        """Create the table if it is missing (at start)."""
        await self._conn.execute(_sqlite(_CREATE))
        await self._conn.commit()

    async def add(self, rows: Mapping[UsageKey, Amount]) -> None:
        """Upsert every row in one transaction."""
        if not rows:
            return
        params = [_row(key, rows[key], _sqlite_hour(key.hour)) for key in sorted(rows)]
        try:
            await self._conn.executemany(_sqlite(_UPSERT), params)
            await self._conn.commit()
        except sqlite3.Error:
            await self._conn.rollback()
            raise

    async def totals(
        self, *, since: datetime, until: datetime | None, key_id: str | None
    ) -> list[UsageTotal]:
        """Sums per key and alias over the hours in range."""
        end = _sqlite_hour(until or _END_OF_TIME)
        params = (_sqlite_hour(hour_of(since)), end, key_id, key_id)
        async with self._conn.execute(_sqlite(_TOTALS), params) as cursor:
            return [_total(row) for row in await cursor.fetchall()]


@asynccontextmanager
async def open_sqlite_usage_store(path: Path) -> AsyncIterator[SqliteUsageStore]:
    """The store in the SQLite file at `path`, table created; closed on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(path, timeout=SQLITE_BUSY_SECONDS) as conn:
        conn.row_factory = sqlite3.Row
        store = SqliteUsageStore(conn)
        await store.setup()
        yield store


async def open_postgres_usage_store(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]],
) -> PostgresUsageStore:
    """The store on the checkpointer's pool, table created (the pool is closed by its owner)."""
    store = PostgresUsageStore(pool)
    await store.setup()
    return store


def month_start(moment: datetime) -> datetime:
    """Midnight UTC of the first day of the moment's month: where a monthly budget restarts."""
    utc = moment.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after the one `start` begins."""
    return (start + timedelta(days=32)).replace(day=1)
