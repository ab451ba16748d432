"""A run's stream on LangGraph's wire: event names, their data, and the SSE frames.

Each part of the graph's stream (`server.turns.chunks.GraphChunk`) becomes the events
LangGraph Server sends for the modes the client asked:

* `values`, `updates`, `custom`, `debug`, `tasks`, `checkpoints`, `events`: an event of that
  name with the part as JSON (a pause is `__interrupt__` in `values` and `updates`);
* `messages-tuple`: `messages` with `[message_chunk, metadata]`, token by token;
* `messages` (the legacy mode): `messages/metadata` once per message, then a message the model
  streams as `messages/partial` with the message so far, token by token (its last one is the
  whole message: LangGraph Server sends no `messages/complete` for it), and a message written
  whole (a tool's result) as `messages/complete`;
* with `stream_subgraphs`, a subgraph's events are named `mode|ns1|ns2`.

`sse` writes one event as a frame, its number as `id:` (what `Last-Event-ID` sends back).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

from server.graph_api.wire import jsonable
from server.turns.chunks import EVENTS, GraphChunk

__all__ = ["WireEvents", "graph_modes", "sse"]

TUPLE = "messages-tuple"
LEGACY = "messages"


def graph_modes(modes: Sequence[str]) -> list[str]:
    """The graph's stream modes behind the modes a client asked (`messages-tuple` is `messages`)."""
    return list(dict.fromkeys("messages" if mode == TUPLE else mode for mode in modes))


def sse(seq: int, event: str, data: Any) -> str:
    """One server-sent event: its name, its data as JSON, its number as `id`."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\nid: {seq}\n\n"


class WireEvents:
    """Turns a run's parts into LangGraph's events, for the modes the client asked."""

    def __init__(self, modes: Sequence[str]) -> None:
        self._modes = set(modes)
        self._partial: dict[str, BaseMessageChunk] = {}
        self._described: set[str] = set()

    def events(self, chunk: GraphChunk) -> Iterator[tuple[str, Any]]:
        """The `(event, data)` pairs of one part of the stream."""
        suffix = "".join(f"|{name}" for name in chunk.namespace)
        if chunk.mode != "messages":
            if chunk.mode in self._modes or chunk.mode == EVENTS:
                yield chunk.mode + suffix, jsonable(chunk.data)
            return
        message, metadata = chunk.data
        if TUPLE in self._modes:
            yield "messages" + suffix, [jsonable(message), jsonable(metadata)]
        if LEGACY in self._modes:
            yield from self._legacy(message, metadata, suffix)

    def _legacy(
        self, message: BaseMessage, metadata: dict[str, Any], suffix: str
    ) -> Iterator[tuple[str, Any]]:
        """`messages/metadata`, then `messages/partial` (streamed) or `messages/complete`."""
        ident = message.id or ""
        if ident not in self._described:
            self._described.add(ident)
            yield "messages/metadata" + suffix, {ident: {"metadata": jsonable(metadata)}}
        if isinstance(message, BaseMessageChunk):
            so_far = self._partial.get(ident)
            whole = message if so_far is None else so_far + message
            self._partial[ident] = whole
            if getattr(message, "chunk_position", None) == "last":
                del self._partial[ident]
            yield "messages/partial" + suffix, [jsonable(message_chunk_to_message(whole))]
            return
        self._partial.pop(ident, None)
        yield "messages/complete" + suffix, [jsonable(message)]
