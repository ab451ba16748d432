"""What the LangGraph API knows of a thread beyond its checkpoints: metadata, status, times.

The checkpoints of a thread are the checkpointer's (the same thread on every door); this
store keeps the rest of LangGraph's `Thread` object: the client's `metadata` (agent-chat-ui's
sidebar searches it for `graph_id` and `assistant_id`, which a run stamps in), when it was
created and updated, and its `status` as the last run left it (`idle`, `busy`,
`interrupted`, `error`). A thread that another door started has no record until this door
writes one; the door shows it from its checkpoints alone.

Records are keyed by the stored thread id (`<key_id>:<thread_id>`, see
`server.turns.threads`), and carry the key id, so a search never crosses callers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, Protocol

__all__ = [
    "UNPAGED",
    "MemoryThreadRecords",
    "SortBy",
    "SortOrder",
    "StampAndCount",
    "ThreadQuery",
    "ThreadRecord",
    "ThreadRecords",
    "ThreadStatus",
    "contains",
    "matches",
]

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
SortBy = Literal["thread_id", "created_at", "updated_at", "status"]
SortOrder = Literal["asc", "desc"]

UNPAGED: Final = 2**62
"""A page size that no store reaches (a count's search)."""


@dataclass(frozen=True)
class ThreadRecord:
    """One thread's record.

    Attributes:
        stored_id: The thread as stored (`<key_id>:<thread_id>`; the id itself for an open
            service's anonymous caller).
        key_id: The caller whose thread it is.
        metadata: The client's metadata (JSON), plus `graph_id`/`assistant_id` from runs.
        created_at, updated_at: Unix times.
        status: As the last run left it.
        error: The last run's error, when `status` is `error`.
    """

    stored_id: str
    key_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    status: ThreadStatus = "idle"
    error: str | None = None


@dataclass(frozen=True)
class ThreadQuery:
    """What a search of thread records asks for (the door's `POST /threads/search`).

    Attributes:
        metadata: Records whose metadata contains this (JSON containment, `contains`).
        status: Records of this status.
        ids: Records of these stored ids.
        limit, offset: The page (a count ignores them).
        sort_by, sort_order: The order (ties by stored id, on the databases).
    """

    metadata: dict[str, Any] | None = None
    status: ThreadStatus | None = None
    ids: list[str] | None = None
    limit: int = 10
    offset: int = 0
    sort_by: SortBy = "created_at"
    sort_order: SortOrder = "desc"

    def admits(self, record: ThreadRecord) -> bool:
        """Whether the record is one the query asks for (its caller aside)."""
        return (
            (self.status is None or record.status == self.status)
            and (self.ids is None or record.stored_id in self.ids)
            and matches(record, self.metadata)
        )


class ThreadRecords(Protocol):
    """The store of thread records (PostgreSQL, SQLite, or in memory)."""

    async def get(self, stored_id: str) -> ThreadRecord | None:
        """The record of a stored thread, or None."""

    async def create(
        self,
        stored_id: str,
        key_id: str,
        metadata: dict[str, Any],
        *,
        created_at: float | None = None,
    ) -> ThreadRecord | None:
        """Create a record; None when one exists already (nothing is changed then).

        `created_at` (a Unix time, else now): when a thread that another door started
        began, its first checkpoint's time.
        """

    async def stamp(
        self,
        stored_id: str,
        key_id: str,
        metadata: dict[str, Any],
        *,
        created_at: float | None = None,
    ) -> ThreadRecord:
        """Merge `metadata` into the record (created when missing: `create`); the record after."""

    async def update(
        self, stored_id: str, *, metadata: dict[str, Any] | None = None
    ) -> ThreadRecord | None:
        """Merge `metadata` into an existing record (None: no such record)."""

    async def set_status(
        self, stored_id: str, status: ThreadStatus, error: str | None = None
    ) -> None:
        """Record how a run left the thread (a thread without a record is left alone)."""

    async def delete(self, stored_id: str) -> bool:
        """Delete the record; whether there was one."""

    async def search(self, key_id: str, query: ThreadQuery) -> list[ThreadRecord]:
        """The caller's records that `query` admits, sorted and paged."""

    async def count(self, key_id: str, query: ThreadQuery) -> int:
        """How many of the caller's records `search` would find, unpaged."""


def contains(whole: Any, part: Any) -> bool:
    """JSON containment, as PostgreSQL's `jsonb @>`: `part` is within `whole`.

    An object contains another when it holds each of its keys with a value that contains
    the other's; an array contains another when each of its elements is contained by one
    of the first's; anything else when it is equal (`1` is not `1.5`, nor `true`).
    """
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and contains(whole[key], value) for key, value in part.items()
        )
    if isinstance(part, list):
        return isinstance(whole, list) and all(
            any(contains(item, wanted) for item in whole) for wanted in part
        )
    if isinstance(part, bool) or isinstance(whole, bool):
        return type(part) is type(whole) and part == whole
    return bool(whole == part)


def matches(record: ThreadRecord, metadata: dict[str, Any] | None) -> bool:
    """Whether the record's metadata contains `metadata` (`contains`)."""
    return contains(record.metadata, metadata or {})


class StampAndCount:
    """`stamp` and `count` of a store that has `create`, `update` and `search` (a mixin).

    A stamp is a create, else an update (PostgreSQL does both in one upsert instead); a
    count is the length of an unpaged search (for stores that match metadata here).
    """

    async def stamp(
        self: ThreadRecords,
        stored_id: str,
        key_id: str,
        metadata: dict[str, Any],
        *,
        created_at: float | None = None,
    ) -> ThreadRecord:
        """See `ThreadRecords.stamp`."""
        record = await self.create(stored_id, key_id, metadata, created_at=created_at)
        if record is not None:
            return record
        updated = await self.update(stored_id, metadata=metadata)
        assert updated is not None  # nosec B101 - created or present just above
        return updated

    async def count(self: ThreadRecords, key_id: str, query: ThreadQuery) -> int:
        """See `ThreadRecords.count`."""
        return len(await self.search(key_id, replace(query, limit=UNPAGED, offset=0)))


class MemoryThreadRecords(StampAndCount):
    """Thread records in this process (unit tests, and the store before a database is open)."""

    def __init__(self) -> None:
        self._records: dict[str, ThreadRecord] = {}

    async def get(self, stored_id: str) -> ThreadRecord | None:
        """See `ThreadRecords.get`."""
        return self._records.get(stored_id)

    async def create(
        self,
        stored_id: str,
        key_id: str,
        metadata: dict[str, Any],
        *,
        created_at: float | None = None,
    ) -> ThreadRecord | None:
        """See `ThreadRecords.create`."""
        if stored_id in self._records:
            return None
        now = time.time()
        record = ThreadRecord(stored_id, key_id, dict(metadata), created_at or now, now)
        self._records[stored_id] = record
        return record

    async def update(
        self, stored_id: str, *, metadata: dict[str, Any] | None = None
    ) -> ThreadRecord | None:
        """See `ThreadRecords.update`."""
        record = self._records.get(stored_id)
        if record is None:
            return None
        merged = {**record.metadata, **(metadata or {})}
        record = replace(record, metadata=merged, updated_at=time.time())
        self._records[stored_id] = record
        return record

    async def set_status(
        self, stored_id: str, status: ThreadStatus, error: str | None = None
    ) -> None:
        """See `ThreadRecords.set_status`."""
        record = self._records.get(stored_id)
        if record is not None:
            self._records[stored_id] = replace(
                record, status=status, error=error, updated_at=time.time()
            )

    async def delete(self, stored_id: str) -> bool:
        """See `ThreadRecords.delete`."""
        return self._records.pop(stored_id, None) is not None

    async def search(self, key_id: str, query: ThreadQuery) -> list[ThreadRecord]:
        """See `ThreadRecords.search`."""
        found = [r for r in self._records.values() if r.key_id == key_id and query.admits(r)]
        key = "stored_id" if query.sort_by == "thread_id" else query.sort_by
        found.sort(key=lambda record: getattr(record, key), reverse=query.sort_order == "desc")
        return found[query.offset : query.offset + query.limit]
