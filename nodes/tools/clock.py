"""A clock and calendar tool.

Models have no clock and are poor at calendar arithmetic (month lengths, weekdays,
daylight saving), so the agent asks this tool for the current time in a zone, for a
date shifted by some days/hours/minutes, or for the time between two dates. The
source of "now" is injectable so that tests (and replays) are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from graph.errors import ToolInputError

__all__ = [
    "MAX_ADD_DAYS",
    "MAX_ADD_HOURS",
    "MAX_ADD_MINUTES",
    "ClockInput",
    "clock_tool",
    "make_clock_tool",
]

#: Largest absolute shift accepted by each ``add_*`` argument (about 2,700 years).
MAX_ADD_DAYS = 1_000_000
MAX_ADD_HOURS = MAX_ADD_DAYS * 24
MAX_ADD_MINUTES = MAX_ADD_HOURS * 60

_MAX_TEXT_LENGTH = 64
_TIMEZONE_EXAMPLE = "'Europe/Paris', 'America/New_York', 'Asia/Tokyo' or 'UTC'"
_DATE_EXAMPLE = "'2026-11-26' or '2026-11-26T09:30:00' (optionally with an offset like +01:00)"


class ClockInput(BaseModel):
    """Arguments of the ``clock`` tool."""

    timezone: str = Field(
        default="UTC",
        description=f"IANA time zone name for the result, e.g. {_TIMEZONE_EXAMPLE}.",
    )
    date: str | None = Field(
        default=None,
        description=(
            "ISO-8601 date or datetime to use instead of the current time, e.g. "
            f"{_DATE_EXAMPLE}. Without an offset it is read as local time in `timezone`."
        ),
    )
    add_days: int = Field(
        default=0,
        description="Calendar days to add (negative to subtract); keeps the local time of day.",
    )
    add_hours: int = Field(default=0, description="Hours to add (negative to subtract).")
    add_minutes: int = Field(default=0, description="Minutes to add (negative to subtract).")
    until: str | None = Field(
        default=None,
        description=(
            "ISO-8601 date or datetime; when given, the tool answers how long it is from the "
            "(shifted) base time until this moment instead of just the time."
        ),
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _zone(name: str) -> ZoneInfo:
    """Resolve an IANA zone name, mapping every lookup failure to an input error."""
    key = name.strip()
    if not key or len(key) > _MAX_TEXT_LENGTH:
        raise ToolInputError(f"Give an IANA time zone name such as {_TIMEZONE_EXAMPLE}.")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolInputError(
            f"Unknown time zone {key!r}; use an IANA name such as {_TIMEZONE_EXAMPLE}."
        ) from None


def _parse_moment(text: str, zone: tzinfo, argument: str) -> datetime:
    """Parse an ISO date/datetime; naive values are local time in ``zone``."""
    value = text.strip()
    if len(value) > _MAX_TEXT_LENGTH:
        raise ToolInputError(f"`{argument}` is too long; give a date like {_DATE_EXAMPLE}.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ToolInputError(
            f"`{argument}` is not an ISO-8601 date: {value!r}. Use a date like {_DATE_EXAMPLE}."
        ) from None
    if moment.tzinfo is None:
        return _normalize(moment.replace(tzinfo=zone), zone)
    return _normalize(moment, zone)


def _normalize(moment: datetime, zone: tzinfo) -> datetime:
    """Express ``moment`` in ``zone`` via UTC, which also resolves DST gaps and folds."""
    try:
        return moment.astimezone(UTC).astimezone(zone)
    except OverflowError:
        raise ToolInputError(
            "The date falls outside the supported range (years 1 to 9999)."
        ) from None


def _check_bounds(add_days: int, add_hours: int, add_minutes: int) -> None:
    for name, value, limit in (
        ("add_days", add_days, MAX_ADD_DAYS),
        ("add_hours", add_hours, MAX_ADD_HOURS),
        ("add_minutes", add_minutes, MAX_ADD_MINUTES),
    ):
        if abs(value) > limit:
            raise ToolInputError(f"`{name}` must be between -{limit} and {limit}, got {value}.")


def _shift(base: datetime, zone: tzinfo, days: int, hours: int, minutes: int) -> datetime:
    """Add calendar days on the local clock, then hours and minutes as elapsed time.

    "In 2 days" means the same local time two days later even across a daylight
    saving change, whereas "in 3 hours" means three hours of real time later.
    """
    try:
        local = _normalize(base + timedelta(days=days), zone)
        return _normalize(local.astimezone(UTC) + timedelta(hours=hours, minutes=minutes), zone)
    except OverflowError:
        raise ToolInputError(
            "The shifted date falls outside the supported range (years 1 to 9999)."
        ) from None


def _describe(moment: datetime) -> str:
    return f"{moment.isoformat(timespec='seconds')} ({moment.strftime('%A')})"


def _quantity(count: int, unit: str) -> str:
    """E.g. ``1 day``, ``2 days``, ``-2 days``."""
    return f"{count} {unit}" if abs(count) == 1 else f"{count} {unit}s"


def _describe_span(start: datetime, end: datetime) -> str:
    """Render the elapsed time from start to end in whole days, hours and minutes.

    When ``end`` is earlier, every non-zero part carries the minus sign
    (``-2 days, -3 hours, 0 minutes``), so that no part can be misread as positive.
    """
    elapsed = end.astimezone(UTC) - start.astimezone(UTC)
    sign = -1 if elapsed < timedelta(0) else 1
    total_minutes = int(abs(elapsed).total_seconds()) // 60
    days, rest = divmod(total_minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = ((days, "day"), (hours, "hour"), (minutes, "minute"))
    return ", ".join(_quantity(sign * count, unit) for count, unit in parts)


def _clock(
    now: datetime,
    timezone: str,
    date: str | None,
    add_days: int,
    add_hours: int,
    add_minutes: int,
    until: str | None,
) -> str:
    zone = _zone(timezone)
    _check_bounds(add_days, add_hours, add_minutes)
    if date is None:
        aware_now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        base = _normalize(aware_now, zone)
    else:
        base = _parse_moment(date, zone, "date")
    moment = _shift(base, zone, add_days, add_hours, add_minutes)
    if until is None:
        return f"{_describe(moment)}, {zone.key}"
    target = _parse_moment(until, zone, "until")
    span = _describe_span(moment, target)
    return f"{span} from {_describe(moment)} to {_describe(target)}, {zone.key}"


def make_clock_tool(now: Callable[[], datetime] | None = None) -> BaseTool:
    """Build the ``clock`` tool.

    Output formats (ISO-8601 with the UTC offset, the English weekday, and the IANA
    zone name last):

    * time: ``"2026-11-26T09:30:00+01:00 (Thursday), Europe/Paris"``
    * with ``until``: ``"31 days, 14 hours, 30 minutes from 2026-11-26T09:30:00+00:00
      (Thursday) to 2026-12-28T00:00:00+00:00 (Monday), UTC"``. The span is real
      elapsed time, truncated to whole minutes; when ``until`` lies before the base
      time every non-zero part is negative (``"-2 days, -3 hours, 0 minutes from ..."``).

    The base time is ``date`` if given (naive values are local time in ``timezone``),
    else ``now()``; ``add_days`` is applied on the local calendar and
    ``add_hours``/``add_minutes`` as elapsed time, before ``until`` is compared.

    Args:
        now: Returns the current time; defaults to the timezone-aware UTC now. A naive
            result is taken as UTC. Tests inject a fixed time here.

    Returns:
        The tool.
    """
    clock_now = now or _utc_now

    async def clock(
        timezone: str = "UTC",
        date: str | None = None,
        add_days: int = 0,
        add_hours: int = 0,
        add_minutes: int = 0,
        until: str | None = None,
    ) -> str:
        return _clock(clock_now(), timezone, date, add_days, add_hours, add_minutes, until)

    return StructuredTool.from_function(
        coroutine=clock,
        name="clock",
        description=(
            "Get the current date, time and weekday in a time zone, or do calendar "
            "arithmetic. Use it whenever the answer depends on today's date or the time, "
            "and for questions like 'what day is it in 10 days' or 'how long until "
            "Christmas'. Arguments: `timezone` (IANA name, default UTC), optional `date` "
            "(ISO-8601) to start from instead of now, `add_days`/`add_hours`/`add_minutes` "
            "to shift it, and optional `until` (ISO-8601) to get the time span from the "
            "base to that moment. Returns e.g. "
            "'2026-11-26T09:30:00+01:00 (Thursday), Europe/Paris' or "
            "'31 days, 14 hours, 30 minutes from ... to ...'."
        ),
        args_schema=ClockInput,
    )


#: The clock tool reading the real current time.
clock_tool: BaseTool = make_clock_tool()
