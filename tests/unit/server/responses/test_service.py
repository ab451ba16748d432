"""The Responses core without a server (SQLite): ids name checkpoints, continuing and forking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from graph.builder import build_graph
from server.auth import Caller
from server.errors import status_of
from server.refusals import Refused
from server.responses.protocol import CreateResponseRequest
from server.responses.service import DOOR, ResponsesService, response_id
from server.responses.wire import ResponseObject
from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from server.stores.resources import cooldown_store
from server.stores.response_store import ResponseStore, StoredResponse, open_response_store
from server.turns.kit import TurnKit
from server.wiring.services import build_agent_deps
from tests.conftest import SettingsFactory
from tests.unit.server.kit import http_request, turn_kit

CALLER = Caller("key")


@dataclass
class Door:
    kit: TurnKit
    service: ResponsesService
    saver: BaseCheckpointSaver[Any]
    store: ResponseStore

    async def create(self, **body: Any) -> tuple[ResponseObject, StoredResponse | None]:
        """One `POST /v1/responses` (not streamed), as the route runs it."""
        request = CreateResponseRequest.model_validate({"model": "offline", **body})
        await self.kit.admit(
            http_request("/v1/responses"),
            CALLER,
            door=DOOR,
            messages=len(request.items),
            param="input",
        )
        self.service.validate(request)
        request = await self.service.resolve(request)
        previous = await self.service.previous(request)
        rid = response_id()
        thread = self.service.thread_for(request, previous, rid)
        planned = await self.service.plan(request, rid, previous, thread)
        async with self.kit.open(planned.turn) as turn:
            result = await turn.complete()
            response = self.service.response(planned, status="completed", result=result)
            await self.service.record(planned, response, result)
        return response, await self.store.get(rid, "key")


@pytest.fixture
async def door(make_settings: SettingsFactory, tmp_path: Path) -> AsyncIterator[Door]:
    settings: Settings = make_settings(sqlite_path=tmp_path / "c.sqlite")
    deps = build_agent_deps(settings, cooldowns=cooldown_store(settings, None))
    async with open_checkpointer(settings) as saver, open_response_store(settings, saver) as store:
        graph = build_graph(lambda: deps, checkpointer=saver)
        stateless = build_graph(lambda: deps)
        kit = turn_kit(
            settings,
            deps,
            graph,
            stateless,
            checkpointer=saver,
            latest_checkpoint=store.latest_checkpoint,
        )
        service = ResponsesService(kit=kit, providers=deps.providers, store=store, caller=CALLER)
        yield Door(kit, service, saver, store)
    await deps.providers.aclose()


async def parent_of(door: Door, record: StoredResponse) -> str | None:
    config = {
        "configurable": {
            "thread_id": record.thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": record.checkpoint_id,
        }
    }
    found = await door.saver.aget_tuple(config)  # type: ignore[arg-type]
    assert found is not None
    parent = found.parent_config
    return None if parent is None else str(parent["configurable"]["checkpoint_id"])


async def test_a_new_response_starts_a_thread_named_after_it(door: Door) -> None:
    response, record = await door.create(input="echo fig")
    assert record is not None
    assert record.thread_id == f"key:{response.id}"  # scoped to the key (`scoped_thread_id`)
    assert record.response == response.model_dump(mode="json")


async def test_continuing_appends_and_an_older_id_forks(door: Door) -> None:
    _, first = await door.create(input="echo one")
    assert first is not None
    _, second = await door.create(input="echo two", previous_response_id=first.id)
    assert second is not None
    assert second.thread_id == first.thread_id
    # The continuation's run starts from the previous response's checkpoint ...
    assert await parent_of(door, second) is not None
    forked, third = await door.create(input="what did I say?", previous_response_id=first.id)
    assert third is not None
    assert forked.output[0].content[0].text == 'Earlier you said: "echo one"'  # type: ignore[union-attr]
    # ... and so does a fork: both branches hang off the first response's checkpoint.
    chain = [third.checkpoint_id]
    while (up := await parent_of(door, _at(third, chain[-1]))) is not None:
        chain.append(up)
    assert first.checkpoint_id in chain
    assert second.checkpoint_id not in chain


def _at(record: StoredResponse, checkpoint_id: str) -> StoredResponse:
    return StoredResponse(
        id=record.id,
        key_id=record.key_id,
        thread_id=record.thread_id,
        checkpoint_id=checkpoint_id,
        model=record.model,
        created_at=record.created_at,
        response=record.response,
    )


async def test_store_false_writes_nothing(door: Door) -> None:
    response, record = await door.create(input="echo fig", store=False)
    assert record is None
    assert response.store is False
    assert [c async for c in door.saver.alist(None)] == []


@pytest.mark.parametrize(
    "unset",
    [
        {"background": False},
        {"include": []},
        {"reasoning": {"effort": None, "summary": None}},
        {"top_logprobs": 0},
        {"truncation": "auto", "user": "u", "service_tier": "auto", "stream_options": {}},
    ],
)
async def test_parameters_that_ask_for_nothing_are_accepted(
    door: Door, unset: dict[str, Any]
) -> None:
    response, _ = await door.create(input="echo ok", **unset)
    assert response.status == "completed"


async def test_a_missing_checkpoint_is_a_404(door: Door) -> None:
    _, first = await door.create(input="echo one")
    assert first is not None
    await door.saver.adelete_thread(first.thread_id)
    for store in (True, False):
        with pytest.raises(Refused) as gone:
            await door.create(input="again", previous_response_id=first.id, store=store)
        assert (status_of(gone.value), gone.value.code) == (404, "thread_not_found")
