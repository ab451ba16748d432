"""A run's parts on LangGraph's wire: event names, the legacy messages mode, SSE frames."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessageChunk, ToolMessage
from langgraph.types import Interrupt

from server.graph_api.run_wire import WireEvents, graph_modes, sse
from server.turns.chunks import GraphChunk

META = {"langgraph_node": "fallback_provider"}


def token(text: str, *, last: bool = False) -> GraphChunk:
    chunk = AIMessageChunk(content=text, id="ai-1", chunk_position="last" if last else None)
    return GraphChunk("messages", (chunk, META))


def test_messages_tuple_is_the_messages_event_with_the_chunk_and_its_metadata() -> None:
    wire = WireEvents(["messages-tuple"])
    ((name, data),) = list(wire.events(token("Hel")))
    assert name == "messages"
    assert data[0]["content"] == "Hel"
    assert data[0]["type"] == "AIMessageChunk"
    assert data[1] == META


def test_the_legacy_mode_describes_once_and_grows_a_streamed_message_to_its_end() -> None:
    wire = WireEvents(["messages"])
    events = [
        *wire.events(token("Hel")),
        *wire.events(token("lo")),
        *wire.events(token("", last=True)),
    ]
    names = [name for name, _ in events]
    assert names == [
        "messages/metadata",
        "messages/partial",
        "messages/partial",
        "messages/partial",  # LangGraph Server sends no `messages/complete` for it
    ]
    assert events[0][1] == {"ai-1": {"metadata": META}}
    assert [data[0]["content"] for _, data in events[1:]] == ["Hel", "Hello", "Hello"]
    assert events[2][1][0]["type"] == "ai"
    # A new message of the same id starts over (the last chunk ended the first).
    assert [data[0]["content"] for _, data in wire.events(token("Bye"))] == ["Bye"]
    tool = ToolMessage("391", tool_call_id="c-1", id="tool-1")
    names = [name for name, _ in wire.events(GraphChunk("messages", (tool, META)))]
    assert names == ["messages/metadata", "messages/complete"]


def test_both_message_modes_at_once_and_other_modes_by_name() -> None:
    wire = WireEvents(["messages", "messages-tuple", "values"])
    names = [name for name, _ in wire.events(token("a"))]
    assert names == ["messages", "messages/metadata", "messages/partial"]
    pause = {"__interrupt__": (Interrupt(value={"ask": 1}, id="i-1"),)}
    ((name, data),) = list(wire.events(GraphChunk("values", pause)))
    assert (name, data) == ("values", {"__interrupt__": [{"id": "i-1", "value": {"ask": 1}}]})


def test_a_subgraphs_events_are_named_after_its_namespace() -> None:
    wire = WireEvents(["updates", "messages-tuple"])
    chunk = GraphChunk("updates", {"node": {"x": 1}}, ("outer:1", "inner:2"))
    assert [name for name, _ in wire.events(chunk)] == ["updates|outer:1|inner:2"]
    nested = GraphChunk("messages", token("a").data, ("outer:1",))
    assert [name for name, _ in wire.events(nested)] == ["messages|outer:1"]


def test_the_graph_streams_messages_for_either_message_mode() -> None:
    assert graph_modes(["messages-tuple", "values", "messages"]) == ["messages", "values"]


def test_a_frame_carries_its_name_its_json_and_its_number() -> None:
    frame = sse(7, "values", {"text": "café"})
    assert frame == 'event: values\ndata: {"text":"café"}\nid: 7\n\n'
    assert json.loads(frame.splitlines()[1].removeprefix("data: ")) == {"text": "café"}
