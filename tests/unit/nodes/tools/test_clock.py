from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from graph.errors import ToolInputError
from nodes.tools.clock import clock_tool, make_clock_tool

# A Thursday, late enough in the UTC day that Tokyo is already on Friday.
FIXED_NOW = datetime(2026, 11, 26, 20, 15, 42, 123456, tzinfo=UTC)


@pytest.fixture
def clock() -> BaseTool:
    return make_clock_tool(lambda: FIXED_NOW)


async def call(tool: BaseTool, **arguments: Any) -> str:
    result = await tool.ainvoke(arguments)
    assert isinstance(result, str)
    return result


async def test_utc_now(clock: BaseTool) -> None:
    assert await call(clock) == "2026-11-26T20:15:42+00:00 (Thursday), UTC"


async def test_tokyo_is_already_the_next_day(clock: BaseTool) -> None:
    assert await call(clock, timezone="Asia/Tokyo") == (
        "2026-11-27T05:15:42+09:00 (Friday), Asia/Tokyo"
    )


async def test_paris_uses_winter_offset(clock: BaseTool) -> None:
    assert await call(clock, timezone="Europe/Paris") == (
        "2026-11-26T21:15:42+01:00 (Thursday), Europe/Paris"
    )


async def test_naive_now_is_taken_as_utc() -> None:
    tool = make_clock_tool(lambda: datetime(2026, 11, 26, 20, 15))
    assert await call(tool, timezone="Asia/Tokyo") == (
        "2026-11-27T05:15:00+09:00 (Friday), Asia/Tokyo"
    )


async def test_add_days_crosses_a_month(clock: BaseTool) -> None:
    assert await call(clock, add_days=10) == "2026-12-06T20:15:42+00:00 (Sunday), UTC"
    assert await call(clock, add_days=-26) == "2026-10-31T20:15:42+00:00 (Saturday), UTC"


async def test_add_hours_and_minutes(clock: BaseTool) -> None:
    assert await call(clock, add_hours=4, add_minutes=-15) == (
        "2026-11-27T00:00:42+00:00 (Friday), UTC"
    )


async def test_naive_date_is_read_in_the_requested_zone(clock: BaseTool) -> None:
    assert await call(clock, timezone="Europe/Paris", date="2026-11-26T09:30") == (
        "2026-11-26T09:30:00+01:00 (Thursday), Europe/Paris"
    )
    assert await call(clock, date="2024-02-28", add_days=1) == (
        "2024-02-29T00:00:00+00:00 (Thursday), UTC"
    )


async def test_aware_date_is_converted_to_the_requested_zone(clock: BaseTool) -> None:
    assert await call(clock, timezone="Asia/Tokyo", date="2026-11-26T23:00:00Z") == (
        "2026-11-27T08:00:00+09:00 (Friday), Asia/Tokyo"
    )


async def test_days_keep_local_time_but_hours_are_elapsed_across_dst(clock: BaseTool) -> None:
    # Europe/Paris switches to summer time on 2026-03-29 at 02:00.
    base = {"timezone": "Europe/Paris", "date": "2026-03-28T09:00"}
    assert await call(clock, **base, add_days=1) == (
        "2026-03-29T09:00:00+02:00 (Sunday), Europe/Paris"
    )
    assert await call(clock, **base, add_hours=24) == (
        "2026-03-29T10:00:00+02:00 (Sunday), Europe/Paris"
    )


async def test_until_gives_the_difference(clock: BaseTool) -> None:
    assert await call(clock, date="2026-11-26T09:30:00", until="2026-12-28") == (
        "31 days, 14 hours, 30 minutes from 2026-11-26T09:30:00+00:00 (Thursday) "
        "to 2026-12-28T00:00:00+00:00 (Monday), UTC"
    )


async def test_until_from_now_truncates_to_minutes(clock: BaseTool) -> None:
    assert await call(clock, until="2026-11-27T21:16:00") == (
        "1 day, 1 hour, 0 minutes from 2026-11-26T20:15:42+00:00 (Thursday) "
        "to 2026-11-27T21:16:00+00:00 (Friday), UTC"
    )


async def test_until_in_the_past_is_negative(clock: BaseTool) -> None:
    assert await call(clock, date="2026-11-26T09:30", until="2026-11-24T06:30") == (
        "-2 days, -3 hours, 0 minutes from 2026-11-26T09:30:00+00:00 (Thursday) "
        "to 2026-11-24T06:30:00+00:00 (Tuesday), UTC"
    )


async def test_until_counts_real_time_across_dst(clock: BaseTool) -> None:
    assert await call(
        clock, timezone="Europe/Paris", date="2026-03-29T00:00", until="2026-03-29T12:00"
    ) == (
        "0 days, 11 hours, 0 minutes from 2026-03-29T00:00:00+01:00 (Sunday) "
        "to 2026-03-29T12:00:00+02:00 (Sunday), Europe/Paris"
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", "", "../etc/passwd", "x" * 300])
async def test_invalid_timezone(clock: BaseTool, zone: str) -> None:
    with pytest.raises(ToolInputError, match="Europe/Paris"):
        await call(clock, timezone=zone)


@pytest.mark.parametrize("argument", ["date", "until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "26/11/2026", ""])
async def test_invalid_dates(clock: BaseTool, argument: str, value: str) -> None:
    with pytest.raises(ToolInputError, match=f"`{argument}` is not an ISO-8601 date"):
        await call(clock, **{argument: value})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"add_days": 1_000_001}, "`add_days` must be between"),
        ({"add_hours": -(10**12)}, "`add_hours` must be between"),
        ({"add_minutes": 10**15}, "`add_minutes` must be between"),
        ({"date": "9999-12-31", "add_days": 1}, "outside the supported range"),
        ({"date": "0001-01-01", "timezone": "Asia/Tokyo"}, "outside the supported range"),
    ],
)
async def test_out_of_range_shifts(
    clock: BaseTool, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolInputError, match=message):
        await call(clock, **arguments)


async def test_default_tool_reads_the_real_clock() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = await call(clock_tool)
    after = datetime.now(UTC)
    iso = result.split(" ", 1)[0]
    assert before <= datetime.fromisoformat(iso) <= after
    assert result.endswith(", UTC")
    assert clock_tool.name == "clock"


def test_schema_lists_the_arguments(clock: BaseTool) -> None:
    properties = convert_to_openai_tool(clock)["function"]["parameters"]["properties"]
    assert set(properties) == {"timezone", "date", "add_days", "add_hours", "add_minutes", "until"}
    assert all(field.get("description") for field in properties.values())
