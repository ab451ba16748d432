"""Retention: delete the threads whose last checkpoint is older than a TTL.

Run it from cron or a Kubernetes CronJob against the same DATABASE_URL as the service:

    python -m server.stores.retention --older-than 30d [--dry-run]

It prints one JSON object: the cutoff, how many threads went, and their ids. A thread's age
is the time of its newest checkpoint (the `ts` every LangGraph checkpoint carries), so a
conversation in use is never removed however old its first turn is. Deletion goes through
the checkpointer's own `adelete_thread` (checkpoints, blobs and pending writes together),
and the thread's rows of the Responses API's `responses` table go with it (they hold the
answers and inputs of its turns), as does its LangGraph API record (`graph_threads`: its
metadata and status).
On PostgreSQL the old threads are found with one aggregate query; other savers (SQLite)
are scanned through `alist`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from server.stores.graph_thread_sql import open_thread_records
from server.stores.graph_threads import ThreadRecords
from server.stores.response_store import ResponseStore, open_response_store

logger = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

_STALE_THREADS_SQL = """
SELECT thread_id, max((checkpoint->>'ts')::timestamptz) AS last_ts
FROM checkpoints
GROUP BY thread_id
HAVING max((checkpoint->>'ts')::timestamptz) < %s
ORDER BY last_ts, thread_id
"""


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` as a timedelta.

    Raises:
        ValueError: Not a positive number followed by one of s, m, h, d, w.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30d, 12h, 90m)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"the duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class RetentionReport:
    """What a run found and removed."""

    cutoff: datetime
    dry_run: bool
    thread_ids: list[str]
    responses: int = 0
    """Rows of the `responses` table deleted with the threads."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON the command prints."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "deleted": 0 if self.dry_run else len(self.thread_ids),
            "responses_deleted": self.responses,
            "thread_ids": self.thread_ids,
        }


def _as_utc(ts: str) -> datetime:
    moment = datetime.fromisoformat(ts)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def stale_threads(saver: BaseCheckpointSaver[Any], cutoff: datetime) -> list[str]:
    """Ids of the threads whose newest checkpoint is older than `cutoff`, oldest first."""
    pool = saver.conn if isinstance(saver, AsyncPostgresSaver) else None
    if isinstance(pool, AsyncConnectionPool):
        async with pool.connection() as conn:
            cursor = await conn.execute(_STALE_THREADS_SQL, (cutoff,))
            rows: list[dict[str, Any]] = await cursor.fetchall()
        return [str(row["thread_id"]) for row in rows]
    newest: dict[str, datetime] = {}
    async for item in saver.alist(None):
        thread_id = str(item.config["configurable"]["thread_id"])
        moment = _as_utc(item.checkpoint["ts"])
        if thread_id not in newest or moment > newest[thread_id]:
            newest[thread_id] = moment
    stale = [(moment, tid) for tid, moment in newest.items() if moment < cutoff]
    return [tid for _, tid in sorted(stale)]


async def purge(
    saver: BaseCheckpointSaver[Any],
    older_than: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    responses: ResponseStore | None = None,
    records: ThreadRecords | None = None,
) -> RetentionReport:
    """Delete (or, dry, only list) the threads idle for longer than `older_than`.

    With `responses`, each deleted thread's stored responses go too; with `records`, its
    LangGraph API record.
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    thread_ids = await stale_threads(saver, cutoff)
    forgotten = 0
    if not dry_run:
        for thread_id in thread_ids:
            await saver.adelete_thread(thread_id)
            if responses is not None:
                forgotten += await responses.forget_thread(thread_id)
            if records is not None:
                await records.delete(thread_id)
    logger.info(
        "retention: %d thread(s) idle since before %s%s",
        len(thread_ids),
        cutoff.isoformat(),
        " (dry run)" if dry_run else " deleted",
    )
    return RetentionReport(
        cutoff=cutoff, dry_run=dry_run, thread_ids=thread_ids, responses=forgotten
    )


async def run(settings: Settings, older_than: timedelta, *, dry_run: bool) -> RetentionReport:
    """Open the configured checkpointer and purge it."""
    name = f"{settings.database_application_name}-retention"[:63]
    async with (
        open_checkpointer(settings, application_name=name) as saver,
        open_response_store(settings, saver) as responses,
        open_thread_records(settings, saver) as records,
    ):
        return await purge(saver, older_than, dry_run=dry_run, responses=responses, records=records)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m server.stores.retention --older-than 30d [--dry-run]`; prints a JSON report."""
    parser = argparse.ArgumentParser(
        prog="python -m server.stores.retention",
        description="Delete conversation threads whose last activity is older than a TTL.",
    )
    parser.add_argument(
        "--older-than",
        required=True,
        type=parse_duration,
        help="idle time after which a thread goes, e.g. 30d, 12h, 2w",
    )
    parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr)
    report = asyncio.run(run(settings, args.older_than, dry_run=args.dry_run))
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
