"""`/store`: the long-term memory store's items, per API key.

The store is LangGraph's own (`AppState.memory`, `server.stores.memory_store`), the one the
graph's nodes read as `runtime.store`. Each key has its own part of it: the namespace a
client names is stored under the key's id (`["<key_id>", *namespace]`), and the key's id is
taken off again on the way out, so a client sees only its own items and never the prefix.
An open service (no keys) stores namespaces as they are sent, as it does thread ids
(`server.turns.threads.scoped_thread_id`). A node that remembers for the caller puts the
caller's key id (`Context.caller`) first in its namespace, and the caller finds it here.

A missing item is `null` (200), as LangGraph Server answers and its SDKs expect
(`getItem(): Item | null`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Response
from fastapi.exceptions import RequestValidationError
from langgraph.store.base import Item, SearchItem
from pydantic import Field

from server.auth import ANONYMOUS, Caller
from server.graph_api.bodies import Body
from server.graph_api.door import door_router
from server.refusals import store_calls
from server.wiring.deps import AppStateDep, CallerDep

__all__ = ["router", "scoped_namespace", "unscoped_namespace"]

router = door_router(tags=["LangGraph API: store"])


def scoped_namespace(caller: Caller, namespace: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The namespace under which the caller's items are stored."""
    if caller.key_id == ANONYMOUS:
        return tuple(namespace)
    return (caller.key_id, *namespace)


def unscoped_namespace(caller: Caller, stored: tuple[str, ...]) -> list[str]:
    """The caller's view of a stored namespace (the inverse of `scoped_namespace`)."""
    if caller.key_id != ANONYMOUS and stored[:1] == (caller.key_id,):
        return list(stored[1:])
    return list(stored)


def _checked(namespace: list[str], *, loc: str, allow_empty: bool = False) -> list[str]:
    """`namespace` if every label is a non-empty string without a period.

    Raises:
        RequestValidationError: 422 naming the label at fault.
    """
    if not namespace and not allow_empty:
        raise _invalid((loc,), "A namespace needs at least one label.")
    for index, label in enumerate(namespace):
        if not label or "." in label or "\x00" in label:
            raise _invalid(
                (loc, str(index)), "A label is a non-empty string without a period or NUL."
            )
    return namespace


def _key(key: str) -> str:
    """`key` if an item can have it (PostgreSQL text holds no NUL).

    Raises:
        RequestValidationError: 422 naming the key.
    """
    if not key or "\x00" in key:
        raise _invalid(("key",), "A key is a non-empty string without NUL.")
    return key


@asynccontextmanager
async def _checked_by_store() -> AsyncIterator[None]:
    """Run the store's call; what it refuses is a 422.

    LangGraph's stores raise `ValueError` for a namespace they reserve or a filter operator
    they do not know. A database that cannot be reached is a 503 (`store_calls`).
    """
    try:
        async with store_calls():
            yield
    except ValueError as error:
        raise _invalid((), str(error)) from error


def _invalid(loc: tuple[str, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": "value_error"}])


def _utc(moment: datetime) -> str:
    """ISO 8601 with the zone (SQLite's store reads its UTC times back without one)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _item(caller: Caller, item: Item) -> dict[str, Any]:
    body: dict[str, Any] = {
        "namespace": unscoped_namespace(caller, item.namespace),
        "key": item.key,
        "value": item.value,
        "created_at": _utc(item.created_at),
        "updated_at": _utc(item.updated_at),
    }
    if isinstance(item, SearchItem):
        body["score"] = item.score
    return body


class PutItem(Body):
    """`PUT /store/items`."""

    namespace: list[str]
    key: str = Field(min_length=1)
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    """Which fields to embed for semantic search (none configured here: ignored)."""
    ttl: float | None = Field(None, gt=0)
    """Minutes the item lives after its last read or write; none: forever."""


class DeleteItem(Body):
    """`DELETE /store/items`."""

    namespace: list[str]
    key: str


class SearchItems(Body):
    """`POST /store/items/search`."""

    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    query: str | None = None
    """Semantic search where an embedding is configured; ignored otherwise."""
    refresh_ttl: bool | None = None


class ListNamespaces(Body):
    """`POST /store/namespaces`."""

    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


@router.put("/store/items", status_code=204, summary="Store an item")
async def put_item(body: PutItem, state: AppStateDep, caller: CallerDep) -> Response:
    """Store (or replace) the item under `namespace` and `key`."""
    namespace = scoped_namespace(caller, _checked(body.namespace, loc="namespace"))
    async with _checked_by_store():
        await state.memory.aput(
            namespace, _key(body.key), body.value, index=body.index, ttl=body.ttl
        )
    return Response(status_code=204)


@router.get("/store/items", summary="Get an item")
async def get_item(
    state: AppStateDep,
    caller: CallerDep,
    key: str,
    namespace: str = "",
    refresh_ttl: bool | None = None,
) -> dict[str, Any] | None:
    """The item, or null (`namespace` is its labels joined by periods)."""
    labels = _checked(namespace.split(".") if namespace else [], loc="namespace")
    async with _checked_by_store():
        item = await state.memory.aget(
            scoped_namespace(caller, labels), _key(key), refresh_ttl=refresh_ttl
        )
    return None if item is None else _item(caller, item)


@router.delete("/store/items", status_code=204, summary="Delete an item")
async def delete_item(body: DeleteItem, state: AppStateDep, caller: CallerDep) -> Response:
    """Delete the item (nothing to do when there is none)."""
    namespace = scoped_namespace(caller, _checked(body.namespace, loc="namespace"))
    async with _checked_by_store():
        await state.memory.adelete(namespace, _key(body.key))
    return Response(status_code=204)


@router.post("/store/items/search", summary="Search items")
async def search_items(
    body: SearchItems, state: AppStateDep, caller: CallerDep
) -> dict[str, list[dict[str, Any]]]:
    """The items under `namespace_prefix` whose values match `filter`, one page."""
    prefix = _checked(body.namespace_prefix, loc="namespace_prefix", allow_empty=True)
    async with _checked_by_store():
        found = await state.memory.asearch(
            scoped_namespace(caller, prefix),
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    return {"items": [_item(caller, item) for item in found]}


@router.post("/store/namespaces", summary="List namespaces")
async def list_namespaces(
    body: ListNamespaces, state: AppStateDep, caller: CallerDep
) -> dict[str, list[list[str]]]:
    """The namespaces that hold items, under `prefix` and ending in `suffix`."""
    prefix = scoped_namespace(caller, _checked(body.prefix or [], loc="prefix", allow_empty=True))
    suffix = tuple(_checked(body.suffix or [], loc="suffix", allow_empty=True))
    scoped = caller.key_id != ANONYMOUS
    async with _checked_by_store():
        found = await state.memory.alist_namespaces(
            prefix=prefix or None,
            suffix=suffix or None,
            max_depth=None if body.max_depth is None else body.max_depth + int(scoped),
            limit=body.limit,
            offset=body.offset,
        )
    return {"namespaces": [unscoped_namespace(caller, namespace) for namespace in found]}
