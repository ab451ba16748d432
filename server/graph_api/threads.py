"""Threads: create, get, search, count, update metadata, delete, copy.

A thread is the same stored thread every door uses, in the caller's namespace: one started
on `/v1` with `X-Thread-Id` is found here by that id, with its whole history. Its record
(metadata, status) is this door's (`server.stores.graph_threads`); its state is its
checkpoints'. Shapes: `server.graph_api.thread_shapes`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal
from uuid import uuid4

from fastapi import Body, Response
from langgraph.types import StateUpdate
from pydantic import BaseModel, ConfigDict, Field

from graph.errors import ErrorCode
from server.graph_api import thread_lookup
from server.graph_api.door import door_router, not_found
from server.graph_api.thread_lookup import facts, require
from server.graph_api.thread_shapes import thread_object
from server.refusals import Refused, store_call
from server.stores.graph_threads import SortBy, SortOrder, ThreadQuery, ThreadStatus
from server.wiring.deps import AppStateDep, CallerDep

__all__ = ["router"]

router = door_router(tags=["LangGraph API: threads"])

Metadata = dict[str, Any]


class StateWrite(BaseModel):
    """One update of a superstep: values, as a node would write them."""

    model_config = ConfigDict(extra="allow")

    values: Any = None
    as_node: str | None = None


class Superstep(BaseModel):
    """Updates that build a new thread's history (`POST /threads`'s `supersteps`)."""

    model_config = ConfigDict(extra="allow")

    updates: list[StateWrite] = Field(default_factory=list)


class ThreadCreate(BaseModel):
    """`POST /threads`."""

    model_config = ConfigDict(extra="allow")

    thread_id: str | None = None
    """The id to create it under (a uuid4 when absent)."""
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    """An existing thread of that id: a 409, or that thread as it is."""
    supersteps: list[Superstep] | None = None
    """State to write on the new thread, each update a checkpoint of its own, in order."""


class ThreadPatch(BaseModel):
    """`PATCH /threads/{thread_id}`."""

    model_config = ConfigDict(extra="allow")

    metadata: Metadata = Field(default_factory=dict)
    """Merged into the thread's metadata (a key given replaces its value)."""


class ThreadSearch(BaseModel):
    """`POST /threads/search`."""

    model_config = ConfigDict(extra="allow")

    metadata: Metadata | None = None
    """Threads whose metadata contains this (JSON containment)."""
    values: Metadata | None = None
    """Threads whose latest values contain this."""
    ids: list[str] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(default=10, ge=0, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: SortBy | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None
    """Only these fields of each thread."""


class ThreadCount(BaseModel):
    """`POST /threads/count`."""

    model_config = ConfigDict(extra="allow")

    metadata: Metadata | None = None
    values: Metadata | None = None
    status: ThreadStatus | None = None


@router.post("/threads", summary="Create a thread")
async def create_thread(
    state: AppStateDep, caller: CallerDep, body: Annotated[ThreadCreate, Body()]
) -> dict[str, Any]:
    """A new thread (or, with `if_exists: do_nothing`, the existing one of that id)."""
    kit = state.turns
    thread = kit.thread(caller, body.thread_id or str(uuid4()))
    existing = await facts(state, thread)
    if existing is None:
        record = await store_call(
            state.graph_threads.create(thread.stored_id, caller.key_id, body.metadata or {})
        )
        if record is not None:
            if body.supersteps:
                steps = [
                    [StateUpdate(u.values, u.as_node) for u in step.updates]
                    for step in body.supersteps
                ]
                try:
                    await kit.update_state(thread, None, supersteps=steps)
                except Refused:  # nothing is created of a thread that cannot be built
                    await store_call(state.graph_threads.delete(thread.stored_id))
                    raise
            created = await facts(state, thread, record)
            assert created is not None  # nosec B101 - it has a record now
            return thread_object(created)
        existing = await facts(state, thread)  # created by a concurrent request
    if body.if_exists == "do_nothing" and existing is not None:
        return thread_object(existing)
    raise Refused(ErrorCode.CONFLICT, f"Thread with ID {thread.client_id} already exists.")


@router.get("/threads/{thread_id}", summary="Get a thread")
async def get_thread(state: AppStateDep, caller: CallerDep, thread_id: str) -> dict[str, Any]:
    """The thread: metadata, status, latest values and interrupts."""
    return thread_object(await require(state, caller, thread_id))


@router.patch("/threads/{thread_id}", summary="Update a thread's metadata")
async def patch_thread(
    state: AppStateDep, caller: CallerDep, thread_id: str, body: Annotated[ThreadPatch, Body()]
) -> dict[str, Any]:
    """Merge `metadata` into the thread's (a thread another door started gets a record)."""
    found = await require(state, caller, thread_id)
    thread = found.thread
    started = found.started.timestamp() if found.started is not None else None
    record = await store_call(
        state.graph_threads.stamp(
            thread.stored_id, caller.key_id, body.metadata, created_at=started
        )
    )
    updated = await facts(state, thread, record)
    assert updated is not None  # nosec B101 - it has a record now
    return thread_object(updated)


@router.delete("/threads/{thread_id}", status_code=204, summary="Delete a thread")
async def delete_thread(state: AppStateDep, caller: CallerDep, thread_id: str) -> Response:
    """Delete the thread's record and every checkpoint (a 409 while a run holds it).

    The Responses API's responses on the thread go too, as retention deletes them
    (`server.stores.retention`): they name its checkpoints.
    """
    kit = state.turns
    thread = kit.thread(caller, thread_id)
    had_checkpoints = await kit.delete_thread(thread)
    had_record = await store_call(state.graph_threads.delete(thread.stored_id))
    if had_checkpoints and state.responses is not None:
        await store_call(state.responses.forget_thread(thread.stored_id))
    if not (had_checkpoints or had_record):
        raise not_found("thread", thread.client_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy", summary="Copy a thread")
async def copy_thread(state: AppStateDep, caller: CallerDep, thread_id: str) -> dict[str, Any]:
    """A new thread with the same checkpoints (its whole history) and metadata."""
    source = await require(state, caller, thread_id)
    kit = state.turns
    target = kit.thread(caller, str(uuid4()))
    await kit.copy_thread(source.thread, target)
    metadata = dict(source.record.metadata) if source.record is not None else {}
    record = await store_call(state.graph_threads.stamp(target.stored_id, caller.key_id, metadata))
    copied = await facts(state, target, record)
    assert copied is not None  # nosec B101 - it has a record now
    return thread_object(copied)


@router.post("/threads/search", summary="Search threads")
async def search_threads(
    state: AppStateDep,
    caller: CallerDep,
    response: Response,
    body: Annotated[ThreadSearch | None, Body()] = None,
) -> list[dict[str, Any]]:
    """The caller's threads that match, newest first by default (`X-Pagination-Total`)."""
    query = body or ThreadSearch()
    wanted = ThreadQuery(
        metadata=query.metadata,
        status=query.status,
        ids=query.ids,
        limit=query.limit,
        offset=query.offset,
        sort_by=query.sort_by or "created_at",
        sort_order=query.sort_order or "desc",
    )
    page = await thread_lookup.search(state, caller, wanted, values=query.values)
    if page.total is not None:
        response.headers["X-Pagination-Total"] = str(page.total)
    more = page.total is None or query.offset + query.limit < page.total
    if len(page.threads) == query.limit and query.limit and more:
        response.headers["X-Pagination-Next"] = str(query.offset + query.limit)
    if query.select:
        return [{key: t.get(key) for key in query.select} for t in page.threads]
    return page.threads


@router.post("/threads/count", summary="Count threads")
async def count_threads(
    state: AppStateDep, caller: CallerDep, body: Annotated[ThreadCount | None, Body()] = None
) -> int:
    """How many of the caller's threads match."""
    query = body or ThreadCount()
    wanted = ThreadQuery(metadata=query.metadata, status=query.status)
    if query.values is not None:
        scan = replace(wanted, limit=thread_lookup.SCAN_LIMIT)
        return len((await thread_lookup.search(state, caller, scan, values=query.values)).threads)
    return await thread_lookup.count(state, caller, wanted)
