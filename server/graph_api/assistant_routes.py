"""`/assistants`: create, read, change (a new version), list versions, search, delete.

The graphs' own assistants (`created_by: system`) are listed and read like the presets but
are not stored: they cannot be changed or deleted (409). A preset belongs to the key that
created it (`AppState.assistants`); another key's is as absent as an unknown one (404).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

from fastapi import Response
from pydantic import Field

from graph.errors import ErrorCode
from server.graph_api.assistants import (
    GRAPHS,
    Assistant,
    resolve_assistant,
    stored_id,
    system_assistant,
    system_assistant_of,
    valid_context,
)
from server.graph_api.bodies import Body
from server.graph_api.door import door_router, not_found
from server.refusals import Refused, store_call
from server.stores.assistants import AssistantPatch, StoredAssistant, now_iso
from server.wiring.deps import AppStateDep, CallerDep

__all__ = ["router"]

router = door_router(tags=["LangGraph API: assistants"])

SortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]


class AssistantCreate(Body):
    """`POST /assistants`."""

    graph_id: str
    assistant_id: UUID | None = Field(None, strict=False)
    """The id to give it (a uuid); a new one if none."""
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantUpdate(Body):
    """`PATCH /assistants/{id}`: the fields to change (metadata merges in)."""

    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None


class AssistantFilter(Body):
    """What `POST /assistants/count` and `/search` match."""

    graph_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    """A part of the name, in any case."""

    def matches(self, assistant: Assistant) -> bool:
        """Whether `assistant` passes every given condition."""
        return (
            (self.graph_id is None or assistant.graph_id == self.graph_id)
            and all(assistant.metadata.get(k) == v for k, v in self.metadata.items())
            and (self.name is None or self.name.casefold() in assistant.name.casefold())
        )


class AssistantSearch(AssistantFilter):
    """`POST /assistants/search`."""

    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: SortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class VersionsQuery(Body):
    """`POST /assistants/{id}/versions`."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class SetLatest(Body):
    """`POST /assistants/{id}/latest`."""

    version: int


def _check_graph(graph_id: str) -> None:
    if graph_id not in GRAPHS:
        raise Refused(
            ErrorCode.NOT_FOUND, f"Graph {graph_id!r} not found. Expected one of: {list(GRAPHS)}"
        )


def _check_config(config: dict[str, Any] | None, context: dict[str, Any] | None) -> None:
    """A preset sets its options in `context`, or in `config.configurable`: not in both."""
    if config and config.get("configurable") and context:
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            "Cannot specify both configurable and context. Prefer setting context alone.",
            param="context",
        )


def _unchangeable(assistant_id: str) -> Refused:
    return Refused(
        ErrorCode.CONFLICT,
        f"Assistant {assistant_id!r} is its graph's own: it cannot be changed or deleted; "
        "create an assistant of the graph instead.",
    )


async def _all(state: AppStateDep, caller: CallerDep, where: AssistantFilter) -> list[Assistant]:
    """The graphs' own assistants and the key's presets that `where` matches."""
    stored = await store_call(state.assistants.of_key(caller.key_id))
    found = [system_assistant(graph) for graph in GRAPHS] + [Assistant.of(s) for s in stored]
    return [assistant for assistant in found if where.matches(assistant)]


@router.post("/assistants", summary="Create an assistant")
async def create_assistant(
    body: AssistantCreate, state: AppStateDep, caller: CallerDep
) -> dict[str, Any]:
    """A new preset of a graph (version 1); `if_exists: do_nothing` returns the one there."""
    _check_graph(body.graph_id)
    _check_config(body.config, body.context)
    assistant_id = str(body.assistant_id or uuid4())
    if system_assistant_of(assistant_id) is not None:
        raise Refused(ErrorCode.CONFLICT, f"Assistant {assistant_id} already exists")
    now = now_iso()
    record = StoredAssistant(
        assistant_id=assistant_id,
        graph_id=body.graph_id,
        version=1,
        config=body.config,
        context=valid_context(body.context),
        metadata=body.metadata,
        name=body.name or "Untitled",
        description=body.description,
        created_at=now,
        updated_at=now,
    )
    if await store_call(state.assistants.create(caller.key_id, record)):
        return Assistant.of(record).to_json()
    if body.if_exists == "do_nothing":
        return (await resolve_assistant(state, caller, assistant_id)).to_json()
    raise Refused(ErrorCode.CONFLICT, f"Assistant {assistant_id} already exists")


@router.post("/assistants/search", summary="Search assistants")
async def search_assistants(
    body: AssistantSearch, state: AppStateDep, caller: CallerDep, response: Response
) -> list[dict[str, Any]]:
    """The assistants that match, sorted, one page (`X-Pagination-Total`, `-Next`)."""
    found = await _all(state, caller, body)
    found.sort(key=lambda a: str(getattr(a, body.sort_by)), reverse=body.sort_order == "desc")
    page = found[body.offset : body.offset + body.limit]
    response.headers["X-Pagination-Total"] = str(len(found))
    if body.offset + body.limit < len(found):
        response.headers["X-Pagination-Next"] = str(body.offset + body.limit)
    rows = [assistant.to_json() for assistant in page]
    if body.select:
        rows = [{k: v for k, v in row.items() if k in body.select} for row in rows]
    return rows


@router.post("/assistants/count", summary="Count assistants")
async def count_assistants(body: AssistantFilter, state: AppStateDep, caller: CallerDep) -> int:
    """How many assistants match."""
    return len(await _all(state, caller, body))


@router.get("/assistants/{assistant_id}", summary="Get an assistant")
async def get_assistant(assistant_id: str, state: AppStateDep, caller: CallerDep) -> dict[str, Any]:
    """The assistant at its latest version (a graph's own also by its graph id)."""
    return (await resolve_assistant(state, caller, assistant_id)).to_json()


@router.patch("/assistants/{assistant_id}", summary="Change an assistant (a new version)")
async def update_assistant(
    assistant_id: str, body: AssistantUpdate, state: AppStateDep, caller: CallerDep
) -> dict[str, Any]:
    """A new version from the latest, with the given fields; it becomes the latest."""
    if system_assistant_of(assistant_id) is not None:
        raise _unchangeable(assistant_id)
    if body.graph_id is not None:
        _check_graph(body.graph_id)
    _check_config(body.config, body.context)
    patch = AssistantPatch(
        graph_id=body.graph_id,
        config=body.config,
        context=None if body.context is None else valid_context(body.context),
        metadata=body.metadata,
        name=body.name,
        description=body.description,
    )
    ident = stored_id(assistant_id)
    stored = await store_call(state.assistants.update(caller.key_id, ident, patch))
    if stored is None:
        raise not_found("assistant", assistant_id)
    return Assistant.of(stored).to_json()


@router.delete("/assistants/{assistant_id}", status_code=204, summary="Delete an assistant")
async def delete_assistant(assistant_id: str, state: AppStateDep, caller: CallerDep) -> Response:
    """Delete the preset and every version of it."""
    if system_assistant_of(assistant_id) is not None:
        raise _unchangeable(assistant_id)
    if not await store_call(state.assistants.delete(caller.key_id, stored_id(assistant_id))):
        raise not_found("assistant", assistant_id)
    return Response(status_code=204)


@router.post("/assistants/{assistant_id}/versions", summary="List an assistant's versions")
async def list_versions(
    assistant_id: str, body: VersionsQuery, state: AppStateDep, caller: CallerDep
) -> list[dict[str, Any]]:
    """Its versions, newest first (a graph's own has one)."""
    system = system_assistant_of(assistant_id)
    if system is not None:
        found = [system]
    else:
        stored = await store_call(state.assistants.versions(caller.key_id, stored_id(assistant_id)))
        if not stored:
            raise not_found("assistant", assistant_id)
        found = [Assistant.of(s) for s in stored]
    found = [a for a in found if all(a.metadata.get(k) == v for k, v in body.metadata.items())]
    return [a.version_json() for a in found[body.offset : body.offset + body.limit]]


@router.post("/assistants/{assistant_id}/latest", summary="Make a version the latest")
async def set_latest_version(
    assistant_id: str, body: SetLatest, state: AppStateDep, caller: CallerDep
) -> dict[str, Any]:
    """The assistant at `version`, now its latest."""
    system = system_assistant_of(assistant_id)
    if system is not None:
        if body.version != system.version:
            raise not_found("assistant version", f"{assistant_id} v{body.version}")
        return system.to_json()
    ident = stored_id(assistant_id)
    stored = await store_call(state.assistants.set_latest(caller.key_id, ident, body.version))
    if stored is None:
        await resolve_assistant(state, caller, assistant_id)  # 404 for the assistant itself
        raise not_found("assistant version", f"{assistant_id} v{body.version}")
    return Assistant.of(stored).to_json()
