"""The Responses event stream without a server: order, numbering, and in-band failures."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from graph.errors import AllProvidersFailedError
from nodes.messages import client_message_id
from server.auth import Caller
from server.errors import SERVER_ERROR_MESSAGE
from server.responses.protocol import CreateResponseRequest
from server.responses.service import PlannedResponse, ResponsesService
from server.responses.streaming import response_events
from server.turns.events import ReasoningDelta, StreamEvent, TextDelta, TurnDone
from server.turns.http import TurnFeed
from server.turns.kit import TurnKit
from server.turns.pump import EventPump
from server.turns.request import TurnRequest
from server.turns.result import TurnResult
from tests.conftest import SettingsFactory

EVENT = TypeAdapter(ResponseStreamEvent)


CALLER = Caller("k")


def service(make_settings: SettingsFactory) -> ResponsesService:
    """A service for building response objects only (no graph, no store: a stateless turn)."""
    kit = cast(TurnKit, SimpleNamespace(settings=make_settings()))
    return ResponsesService(
        kit=kit,
        providers=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        caller=CALLER,
    )


def planned() -> PlannedResponse:
    request = CreateResponseRequest.model_validate({"model": "m", "input": "hi", "store": False})
    turn = TurnRequest(door="responses", caller=CALLER, messages=[])
    return PlannedResponse("resp_1", request, turn, [])


async def frames(
    events: list[StreamEvent | Exception], make_settings: SettingsFactory
) -> list[dict[str, Any]]:
    async def run() -> AsyncGenerator[StreamEvent, None]:
        for event in events:
            if isinstance(event, Exception):
                raise event
            yield event

    pump = EventPump(run())
    held = AsyncExitStack()
    held.push_async_callback(pump.aclose)
    first = await pump.next()
    feed = TurnFeed(first, pump, held)
    body = [
        frame
        async for frame in response_events(feed, service=service(make_settings), planned=planned())
    ]
    await held.aclose()
    parsed = []
    for frame in body:
        kind, data = frame.strip().split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert kind == f"event: {event['type']}"
        EVENT.validate_python(event, strict=True)
        parsed.append(event)
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    return parsed


def output(text: str) -> TurnResult:
    return TurnResult.of(
        {
            "messages": [HumanMessage("hi", id=client_message_id()), AIMessage(text, id="run-1")],
            "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        }
    )


async def test_reasoning_then_text_then_completed(make_settings: SettingsFactory) -> None:
    events = await frames(
        [ReasoningDelta("hm"), TextDelta("He"), TextDelta("llo"), TurnDone(output("Hello"))],
        make_settings,
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[-1]["response"]
    assert [item["type"] for item in done["output"]] == ["reasoning", "message"]
    assert done["output"][1]["content"][0]["text"] == "Hello"
    assert done["usage"]["total_tokens"] == 5


async def test_text_the_stream_never_carried_is_sent_before_the_end(
    make_settings: SettingsFactory,
) -> None:
    """An answer a node wrote without streaming it still reaches the client as a delta."""
    events = await frames([TurnDone(output("Refused."))], make_settings)
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Refused."]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (AllProvidersFailedError("m", []), "Every provider for model 'm' failed"),
        (RuntimeError("a bug"), SERVER_ERROR_MESSAGE),
    ],
)
async def test_a_failure_after_the_first_event_is_response_failed(
    make_settings: SettingsFactory, error: Exception, message: str
) -> None:
    events = await frames([TextDelta("Hel"), error], make_settings)
    assert events[-2]["type"] == "response.output_text.delta"
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"
    assert failed["error"]["message"].startswith(message)
