"""`GET /admin/usage`: tokens, cost and model calls per API key and model alias.

For operators (the `/admin` keys, see `server.admin.admin`). The period is `since` (its
hour included; default: the start of this month, UTC) to `until` (excluded; a date alone
includes that whole day; default: now). Usage is kept per hour, so a time inside an hour
counts that whole hour.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from graph.errors import ErrorCode
from server.auth import ANONYMOUS, KEY_ID_LENGTH
from server.errors import OpenAIHTTPError, error_responses
from server.stores.usage_table import STORE_ERRORS, Amount, month_start
from server.wiring.deps import UsageLedgerDep, authenticate_operator

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(authenticate_operator)])


class UsageLine(BaseModel):
    """One key's usage of one model alias over the period."""

    key: str
    """The key id (16 hex characters of its SHA-256), or `anonymous`."""
    model: str
    """The model alias clients asked for."""
    requests: int
    """Answered model calls (a turn with tool rounds makes several)."""
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    """At the endpoints' prices; endpoints without a price add nothing."""


class UsageReport(BaseModel):
    """`GET /admin/usage`: the lines, and their sum."""

    object: Literal["usage.report"] = "usage.report"
    since: datetime
    until: datetime | None
    data: list[UsageLine]
    total: UsageLine
    """Every line added up (`key` and `model` are `*`)."""


def _line(key: str, model: str, amount: Amount) -> UsageLine:
    return UsageLine(
        key=key,
        model=model,
        requests=amount.requests,
        input_tokens=amount.input_tokens,
        output_tokens=amount.output_tokens,
        total_tokens=amount.tokens,
        cost_usd=round(amount.cost_usd, 10),
    )


def parse_moment(value: str, param: str, *, end: bool = False) -> datetime:
    """An ISO date or datetime as a UTC instant (a naive one is UTC).

    A date alone is its midnight; as an `end`, the midnight after it (the day is included).

    Raises:
        OpenAIHTTPError: 400 naming `param` for anything else.
    """
    text = value.strip()
    try:
        if len(text) == len("2026-12-01"):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date; or one at the very end of the calendar
        raise OpenAIHTTPError(
            400,
            f"Invalid '{param}': {value!r} is not an ISO 8601 date or datetime "
            "(2026-12-01, 2026-12-01T09:00:00Z).",
            code=ErrorCode.INVALID_REQUEST,
            param=param,
        ) from None


def parse_key(value: str) -> str:
    """A key id from `key`: an id, a full digest (shortened to its id), or `anonymous`.

    Raises:
        OpenAIHTTPError: 400 for anything else (a key in clear never belongs in a URL).
    """
    text = value.strip().lower()
    hex_digits = all(c in "0123456789abcdef" for c in text)
    if text == ANONYMOUS or (hex_digits and len(text) in (KEY_ID_LENGTH, 64)):
        return text[:KEY_ID_LENGTH] if text != ANONYMOUS else text
    raise OpenAIHTTPError(
        400,
        "Invalid 'key': give a key id (16 hex characters), its SHA-256 digest, or 'anonymous'.",
        code=ErrorCode.INVALID_REQUEST,
        param="key",
    )


@router.get("/usage", response_model=UsageReport, responses=error_responses(400, 401, 403, 503))
async def usage_report(
    ledger: UsageLedgerDep,
    since: Annotated[str | None, Query(description="ISO date or datetime (UTC)")] = None,
    until: Annotated[str | None, Query(description="ISO date (included) or datetime")] = None,
    key: Annotated[str | None, Query(description="Only this key id")] = None,
) -> UsageReport:
    """Usage per key and model alias over the period, from every replica's writes."""
    start = parse_moment(since, "since") if since else month_start(ledger.clock())
    end = parse_moment(until, "until", end=True) if until else None
    if end is not None and end <= start:
        raise OpenAIHTTPError(
            400, "'until' must be after 'since'.", code=ErrorCode.INVALID_REQUEST, param="until"
        )
    key_id = parse_key(key) if key else None
    try:
        rows = await ledger.totals(since=start, until=end, key_id=key_id)
    except STORE_ERRORS:
        raise OpenAIHTTPError(
            503,
            "The usage store is not reachable right now; retry shortly.",
            code=ErrorCode.CHECKPOINTER_UNAVAILABLE,
            headers={"retry-after": "2"},
        ) from None
    total = sum((row.amount for row in rows), Amount())
    return UsageReport(
        since=start,
        until=end,
        data=[_line(row.key_id, row.model, row.amount) for row in rows],
        total=_line("*", "*", total),
    )
