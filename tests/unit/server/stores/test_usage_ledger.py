"""The usage ledger and its table, on real SQLite and real PostgreSQL.

The ledger is opened the way the lifespan opens it: over the checkpointer of the settings
(its PostgreSQL pool, or beside its SQLite file).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from server.stores.checkpointer import open_checkpointer
from server.stores.usage_ledger import ModelCall, UsageLedger, open_usage_ledger
from server.stores.usage_table import Amount, SqliteUsageStore, month_start, next_month
from tests.conftest import SettingsFactory

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)

OpenLedger = Callable[..., AbstractAsyncContextManager[UsageLedger]]


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Any:
    """Settings on SQLite, or on a fresh PostgreSQL database; the month read from it at once."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return make_settings(database_url=url, usage_cache_seconds=0)
    return make_settings(usage_cache_seconds=0)


@pytest.fixture
def open_ledger(database: Any) -> OpenLedger:
    """Open a ledger over the database, as the lifespan does (several may share it)."""

    @asynccontextmanager
    async def opened(clock: Clock) -> AsyncIterator[UsageLedger]:
        async with (
            open_checkpointer(database) as saver,
            open_usage_ledger(database, saver) as ledger,
        ):
            ledger.clock = clock
            yield ledger

    return opened


def call(
    key: str = "k1", model: str = "m", provider: str = "openai:a", **amounts: Any
) -> ModelCall:
    values = {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.25, **amounts}
    return ModelCall(key, model, provider, **values)


async def test_calls_are_summed_per_key_and_model_across_providers_and_hours(
    open_ledger: OpenLedger,
) -> None:
    clock = Clock(NOW)
    async with open_ledger(clock) as ledger:
        ledger.record(call())
        ledger.record(call(provider="anthropic:b", input_tokens=1, output_tokens=1, cost_usd=1))
        clock.now = NOW + timedelta(hours=2)
        ledger.record(call())
        ledger.record(call(key="k2", model="other"))
        rows = await ledger.totals(since=month_start(NOW), until=None, key_id=None)
    assert [(r.key_id, r.model, r.amount) for r in rows] == [
        ("k1", "m", Amount(3, 21, 11, 1.5)),
        ("k2", "other", Amount(1, 10, 5, 0.25)),
    ]


async def test_a_report_covers_the_hours_of_its_period_and_one_key(
    open_ledger: OpenLedger,
) -> None:
    clock = Clock(NOW)
    async with open_ledger(clock) as ledger:
        ledger.record(call())  # 09:00 bucket
        clock.now = NOW + timedelta(hours=1)
        ledger.record(call(key="k2"))  # 10:00 bucket
        await ledger.flush()
        # `since` inside an hour includes that hour; `until` excludes the hour it starts.
        at_ten = await ledger.totals(since=NOW + timedelta(minutes=45), until=None, key_id=None)
        before_ten = await ledger.totals(
            since=month_start(NOW), until=NOW.replace(hour=10, minute=0), key_id=None
        )
        only_k1 = await ledger.totals(since=month_start(NOW), until=None, key_id="k1")
        since_ever = await ledger.totals(
            since=datetime(999, 1, 1, tzinfo=UTC), until=None, key_id=None
        )
    assert [r.key_id for r in since_ever] == ["k1", "k2"]  # years before 1000 sort too
    assert [r.key_id for r in at_ten] == ["k2"]
    assert [r.key_id for r in before_ten] == ["k1"]
    assert [r.key_id for r in only_k1] == ["k1"]


async def test_the_table_keeps_the_usage_across_restarts(open_ledger: OpenLedger) -> None:
    async with open_ledger(Clock(NOW)) as ledger:
        ledger.record(call())  # written at shutdown, at the latest
    async with open_ledger(Clock(NOW)) as again:
        assert await again.month_spent("k1") == Amount(1, 10, 5, 0.25)


async def test_replicas_share_the_month_and_count_their_own_calls_at_once(
    open_ledger: OpenLedger,
) -> None:
    clock = Clock(NOW)
    async with open_ledger(clock) as one, open_ledger(clock) as two:
        one.record(call())
        assert await one.month_spent("k1") == Amount(1, 10, 5, 0.25)  # not written yet
        await one.flush()
        two.record(call(input_tokens=1, output_tokens=0, cost_usd=0))
        # The other replica reads the table (cache_seconds=0: at once) and adds its own.
        assert await two.month_spent("k1") == Amount(2, 11, 5, 0.25)
        await two.flush()
        assert await two.month_spent("k1") == Amount(2, 11, 5, 0.25)  # never counted twice
        assert await one.month_spent("k1") == Amount(1, 10, 5, 0.25)  # cached, then refreshed
        await _settle()
        assert await one.month_spent("k1") == Amount(2, 11, 5, 0.25)


async def test_a_new_month_starts_from_zero(open_ledger: OpenLedger) -> None:
    clock = Clock(NOW)
    async with open_ledger(clock) as ledger:
        ledger.record(call())
        assert (await ledger.month_spent("k1")).tokens == 15
        clock.now = next_month(month_start(NOW)) + timedelta(minutes=1)
        assert await ledger.month_spent("k1") == Amount()
        ledger.record(call(input_tokens=2, output_tokens=2))
        assert (await ledger.month_spent("k1")).tokens == 4
        last_month = await ledger.totals(
            since=month_start(NOW), until=next_month(month_start(NOW)), key_id="k1"
        )
    assert [r.amount.tokens for r in last_month] == [15]


async def _settle() -> None:
    """Let the background read a `month_spent` started finish."""
    for _ in range(50):
        await asyncio.sleep(0.01)


async def test_a_failed_write_is_counted_kept_and_written_later(
    make_settings: SettingsFactory,
) -> None:
    # SQLite: the table is dropped under the ledger, so writes fail until it is back.
    settings = make_settings()
    errors: list[str] = []
    async with (
        open_checkpointer(settings) as saver,
        open_usage_ledger(settings, saver) as ledger,
    ):
        ledger.add_error_counter(errors.append)
        store = ledger.store
        assert isinstance(store, SqliteUsageStore)
        with sqlite3.connect(settings.sqlite_path) as conn:
            conn.execute("DROP TABLE usage")
        ledger.record(call())
        assert not await ledger.flush()
        assert errors == ["write"]
        assert (await ledger.month_spent("k1")).tokens == 15  # still counted for budgets
        await store.setup()
        assert await ledger.flush()
        rows = await ledger.totals(since=month_start(datetime.now(UTC)), until=None, key_id=None)
    assert [r.amount for r in rows] == [Amount(1, 10, 5, 0.25)]


@pytest.mark.postgres
async def test_the_postgres_table_is_in_the_checkpointers_database(
    make_settings: SettingsFactory, postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)
    async with (
        open_checkpointer(settings) as saver,
        open_usage_ledger(settings, saver) as ledger,
    ):
        ledger.record(call())
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT key_id, requests, input_tokens, cost_usd FROM usage").fetchone()
    assert row == ("k1", 1, 10, 0.25)
