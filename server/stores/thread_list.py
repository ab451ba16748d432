"""Listing threads, newest first and paged: a reader over the checkpointer's own tables.

The savers answer "the checkpoints of this thread", never "which threads are there", so the
inspector's thread list reads the `checkpoints` table that `langgraph-checkpoint-sqlite` and
`langgraph-checkpoint-postgres` both create (`thread_id, checkpoint_ns, checkpoint_id,
parent_checkpoint_id, ...`, primary key `(thread_id, checkpoint_ns, checkpoint_id)`).

* A caller's threads are those whose stored id starts with its namespace (`<key_id>:`, see
  `server.turns.threads`): a range on the primary key's first column, so the index bounds it.
* Checkpoint ids are uuid6 strings, whose text order is their time order: a thread's
  latest checkpoint is its greatest id, and the time of a thread's last update is read
  from that id (`checkpoint_time`) on either database.
* Pages are keyed by that id (`before`): stable while new turns arrive, unlike an offset.

Other savers (the in-memory one of unit tests) are scanned through `alist`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg_pool import AsyncConnectionPool

from server.stores.checkpointer import once_more

__all__ = ["ThreadRow", "checkpoint_time", "first_checkpoint_id", "list_threads"]

_UUID_EPOCH_100NS: Final = 0x01B21DD213814000
"""1582-10-15 (the UUID epoch) to 1970-01-01, in 100-nanosecond intervals."""

_SQL: Final = """
SELECT thread_id, max(checkpoint_id) AS last_checkpoint_id, count(*) AS checkpoints
FROM checkpoints
WHERE checkpoint_ns = '' AND thread_id >= {p} AND thread_id < {p}
GROUP BY thread_id
HAVING {before}
ORDER BY last_checkpoint_id DESC, thread_id DESC
LIMIT {p}
"""


@dataclass(frozen=True)
class ThreadRow:
    """One thread of a listing: its stored id and its latest checkpoint."""

    stored_id: str
    last_checkpoint_id: str
    checkpoints: int
    """Checkpoints of the thread, every branch."""

    @property
    def updated_at(self) -> datetime | None:
        """When the latest checkpoint was written."""
        return checkpoint_time(self.last_checkpoint_id)


def checkpoint_time(checkpoint_id: str) -> datetime | None:
    """When a checkpoint was made, from its uuid6 id (None for an id of another shape)."""
    try:
        value = uuid.UUID(checkpoint_id)
    except ValueError:
        return None
    if value.version != 6:
        return None
    # uuid6: the 60-bit timestamp's high 48 bits, the version, then its low 12 bits.
    ticks = ((value.int >> 80) << 12) | ((value.int >> 64) & 0xFFF)
    return datetime.fromtimestamp((ticks - _UUID_EPOCH_100NS) / 10_000_000, UTC)


def _range(prefix: str) -> tuple[str, str]:
    """Ids starting with `prefix`: from it (inclusive) to its successor (exclusive)."""
    if not prefix:
        return "", "\U0010ffff"
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _query(placeholder: str, *, paged: bool) -> str:
    before = f"max(checkpoint_id) < {placeholder}" if paged else "1 = 1"
    return _SQL.format(p=placeholder, before=before)


def _params(prefix: str, before: str | None, limit: int) -> tuple[Any, ...]:
    low, high = _range(prefix)
    return (low, high, *([before] if before is not None else []), limit)


async def list_threads(
    saver: BaseCheckpointSaver[Any],
    *,
    prefix: str,
    limit: int,
    before: str | None = None,
) -> list[ThreadRow]:
    """The threads whose stored id starts with `prefix`, most recently updated first.

    Args:
        saver: The app's checkpointer.
        prefix: The caller's namespace (`"<key_id>:"`), or `""` for every thread.
        limit: Page size.
        before: The `last_checkpoint_id` of the previous page's last row: list the threads
            last updated before it.
    """
    paged = before is not None
    params = _params(prefix, before, limit)
    if isinstance(saver, AsyncPostgresSaver) and isinstance(saver.conn, AsyncConnectionPool):
        pool = saver.conn

        async def read() -> list[dict[str, Any]]:
            async with pool.connection() as conn:
                result = await conn.execute(_query("%s", paged=paged), params)
                return await result.fetchall()

        rows = await once_more(pool, "thread list", read)
        return [_row(r["thread_id"], r["last_checkpoint_id"], r["checkpoints"]) for r in rows]
    if isinstance(saver, AsyncSqliteSaver):
        await saver.setup()
        connection: aiosqlite.Connection = saver.conn
        async with saver.lock, connection.execute(_query("?", paged=paged), params) as cursor:
            found = list(await cursor.fetchall())
        return [_row(*row) for row in found]
    return await _scan(saver, prefix=prefix, limit=limit, before=before)


def _row(thread_id: Any, last_checkpoint_id: Any, checkpoints: Any) -> ThreadRow:
    return ThreadRow(str(thread_id), str(last_checkpoint_id), int(checkpoints))


async def _scan(
    saver: BaseCheckpointSaver[Any], *, prefix: str, limit: int, before: str | None
) -> list[ThreadRow]:
    """`list_threads` for a saver without tables: every checkpoint through `alist`."""
    latest: dict[str, str] = {}
    counts: dict[str, int] = {}
    async for item in saver.alist(None):
        configurable = item.config["configurable"]
        thread_id = str(configurable["thread_id"])
        if configurable.get("checkpoint_ns", "") or not thread_id.startswith(prefix):
            continue
        checkpoint_id = str(configurable["checkpoint_id"])
        counts[thread_id] = counts.get(thread_id, 0) + 1
        latest[thread_id] = max(latest.get(thread_id, ""), checkpoint_id)
    rows = sorted(
        (ThreadRow(t, c, counts[t]) for t, c in latest.items() if before is None or c < before),
        key=lambda row: (row.last_checkpoint_id, row.stored_id),
        reverse=True,
    )
    return rows[:limit]


_FIRST_SQL: Final = (
    "SELECT min(checkpoint_id) AS first FROM checkpoints"
    " WHERE thread_id = {p} AND checkpoint_ns = ''"
)


async def first_checkpoint_id(saver: BaseCheckpointSaver[Any], stored_id: str) -> str | None:
    """The id of a thread's first checkpoint (when it was started), or None when it has none."""
    if isinstance(saver, AsyncPostgresSaver) and isinstance(saver.conn, AsyncConnectionPool):
        pool = saver.conn

        async def read() -> Any:
            async with pool.connection() as conn:
                result = await conn.execute(_FIRST_SQL.format(p="%s"), (stored_id,))
                return await result.fetchone()

        row = await once_more(pool, "thread list", read)
        return None if row is None or row["first"] is None else str(row["first"])
    if isinstance(saver, AsyncSqliteSaver):
        await saver.setup()
        connection: aiosqlite.Connection = saver.conn
        query = _FIRST_SQL.format(p="?")
        async with saver.lock, connection.execute(query, (stored_id,)) as cursor:
            found = await cursor.fetchone()
        return None if found is None or found[0] is None else str(found[0])
    config: RunnableConfig = {"configurable": {"thread_id": stored_id, "checkpoint_ns": ""}}
    ids = [str(item.config["configurable"]["checkpoint_id"]) async for item in saver.alist(config)]
    return min(ids, default=None)
