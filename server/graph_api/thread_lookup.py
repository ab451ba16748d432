"""Finding a caller's threads: by id, and by search, records and checkpoints together.

A thread is known here by its record (`server.stores.graph_threads`: created on this door),
by its checkpoints (a thread any door ran), or both. `facts` gathers what there is; a search
with no metadata filter also lists the caller's threads that have checkpoints and no record
(a `/v1` conversation with `X-Thread-Id`), read from the checkpointer's tables
(`server.stores.thread_list`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from graph.errors import ErrorCode
from server.auth import ANONYMOUS, Caller
from server.graph_api.door import not_found
from server.graph_api.thread_shapes import ThreadFacts, moment_of, thread_object
from server.refusals import Refused, store_call
from server.stores.graph_threads import SortBy, ThreadQuery, ThreadRecord, contains
from server.stores.thread_list import checkpoint_time, first_checkpoint_id, list_threads
from server.turns.threads import ThreadRef, scoped_thread_id, unscoped_thread_id
from server.wiring.state import AppState

__all__ = ["SCAN_LIMIT", "SearchPage", "facts", "namespace", "require", "search"]

SCAN_LIMIT: Final = 1000
"""Threads read at most to filter by `values` or by the status shown (not stored)."""

_EPOCH: Final = datetime.fromtimestamp(0, UTC)


def namespace(caller: Caller) -> str:
    """The stored-id prefix of the caller's threads (empty for the open service's caller)."""
    return "" if caller.key_id == ANONYMOUS else scoped_thread_id(caller.key_id, "")


def ref_of(caller: Caller, stored_id: str) -> ThreadRef:
    """The caller's thread of a stored id."""
    return ThreadRef(unscoped_thread_id(caller.key_id, stored_id), stored_id, delta=True)


async def facts(
    state: AppState,
    thread: ThreadRef,
    record: ThreadRecord | None = None,
    *,
    looked_up: bool = False,
) -> ThreadFacts | None:
    """What is known of the thread (None: neither a record nor a checkpoint).

    Args:
        state: The app.
        thread: The caller's thread.
        record: Its record, when the caller has read it already (`looked_up`).
        looked_up: Whether `record` is what the store holds (None: no record).

    Raises:
        Refused: `checkpointer_unavailable`.
    """
    if not looked_up and record is None:
        record = await store_call(state.graph_threads.get(thread.stored_id))
    try:
        latest = (await state.turns.read_stored(thread)).snapshot
    except Refused as refused:
        if refused.code != ErrorCode.THREAD_NOT_FOUND:
            raise
        latest = None
    if record is None and latest is None:
        return None
    started = None
    if record is None:
        first = await store_call(first_checkpoint_id(state.checkpointer, thread.stored_id))
        started = checkpoint_time(first) if first else None
    busy = state.turns.locks.busy(thread.stored_id)
    return ThreadFacts(thread, record, latest, started=started, busy=busy)


async def require(state: AppState, caller: Caller, thread_id: str) -> ThreadFacts:
    """The caller's thread a path names, or the door's 404.

    Raises:
        Refused: `invalid_thread_id`; `thread_not_found`; `checkpointer_unavailable`.
    """
    thread = state.turns.thread(caller, thread_id)
    found = await facts(state, thread)
    if found is None:
        raise not_found("thread", thread.client_id)
    return found


@dataclass(frozen=True)
class SearchPage:
    """A page of threads, and the total when it is known without counting twice."""

    threads: list[dict[str, Any]]
    total: int | None


def _sort_key(found: ThreadFacts, sort_by: SortBy) -> Any:
    if sort_by == "thread_id":
        return found.thread.client_id
    if sort_by == "status":
        return found.status
    moment = found.updated_at if sort_by == "updated_at" else found.created_at
    return moment_of(moment) or _EPOCH


async def search(
    state: AppState,
    caller: Caller,
    query: ThreadQuery,
    *,
    values: dict[str, Any] | None = None,
) -> SearchPage:
    """The caller's threads that match, as `Thread` objects, sorted and paged.

    Records are searched in the database (metadata by containment); without a metadata
    filter the threads that only have checkpoints join them. A `values` or `status` filter
    is applied to what is shown, over the first `SCAN_LIMIT` threads.

    Args:
        state: The app.
        caller: Whose threads.
        query: What to find; its `ids` are the caller's thread ids (not stored ids).
        values: Threads whose latest values contain this.

    Raises:
        Refused: `invalid_thread_id` (an id of `ids`); `checkpointer_unavailable`.
    """
    records = state.graph_threads
    metadata, ids, status = query.metadata, query.ids, query.status
    limit, offset, sort_by, sort_order = query.limit, query.offset, query.sort_by, query.sort_order
    stored_ids = None if ids is None else [state.turns.thread(caller, i).stored_id for i in ids]
    filtered = values is not None or status is not None
    wanted = SCAN_LIMIT if filtered else offset + limit
    # The status filtered is the one shown (a thread a run holds is `busy`), not the stored.
    in_records = replace(query, ids=stored_ids, status=None, limit=wanted, offset=0)
    found_records = await store_call(records.search(caller.key_id, in_records))
    candidates: list[ThreadFacts] = []
    for record in found_records:
        known = await facts(state, ref_of(caller, record.stored_id), record, looked_up=True)
        if known is not None:
            candidates.append(known)
    merged = not metadata
    if merged:
        candidates.extend(
            await _checkpoint_only(state, caller, stored_ids, wanted, len(found_records))
        )
        candidates.sort(key=lambda f: _sort_key(f, sort_by), reverse=sort_order == "desc")
    if status is not None:
        candidates = [f for f in candidates if f.status == status]
    shown = [thread_object(f) for f in candidates]
    if values is not None:
        shown = [t for t in shown if contains(t["values"] or {}, values)]
    page = shown[offset : offset + limit]
    total: int | None = None
    if filtered or len(page) < limit:
        total = len(shown) if filtered else offset + len(page)
    elif not merged and ids is None:
        total = await store_call(records.count(caller.key_id, ThreadQuery(metadata=metadata)))
    return SearchPage(page, total)


async def _checkpoint_only(
    state: AppState, caller: Caller, stored_ids: list[str] | None, wanted: int, skip: int
) -> list[ThreadFacts]:
    """The caller's threads that have checkpoints and no record (at most `wanted`)."""
    if stored_ids is not None:
        candidates = stored_ids
    else:
        rows = await store_call(
            list_threads(state.checkpointer, prefix=namespace(caller), limit=wanted + skip)
        )
        candidates = [row.stored_id for row in rows]
    found: list[ThreadFacts] = []
    for stored_id in candidates:
        if await store_call(state.graph_threads.get(stored_id)) is not None:
            continue  # listed with the records (or beyond their page)
        known = await facts(state, ref_of(caller, stored_id), looked_up=True)
        if known is not None:
            found.append(known)
        if len(found) >= wanted:
            break
    return found


async def count(state: AppState, caller: Caller, query: ThreadQuery) -> int:
    """How many of the caller's threads `search` would find (by `query`'s metadata, status).

    Without a status, the records are counted in the database and, with no metadata
    filter, the threads that only have checkpoints (up to `SCAN_LIMIT`) beside them; the
    status shown needs each thread read (up to `SCAN_LIMIT`).

    Raises:
        Refused: `checkpointer_unavailable`.
    """
    metadata = query.metadata
    if query.status is not None:
        by_status = ThreadQuery(metadata=metadata, status=query.status, limit=SCAN_LIMIT)
        return len((await search(state, caller, by_status)).threads)
    records = state.graph_threads
    counted = await store_call(records.count(caller.key_id, ThreadQuery(metadata=metadata)))
    if metadata:
        return counted
    rows = await store_call(
        list_threads(state.checkpointer, prefix=namespace(caller), limit=SCAN_LIMIT)
    )
    for row in rows:
        if await store_call(records.get(row.stored_id)) is None:
            counted += 1
    return counted
