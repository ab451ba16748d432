"""OpenAI's Responses event stream: `response.created` to `response.completed`, numbered.

Every event is an SSE `event: <type>` / `data: <event>` pair with a `sequence_number` one
more than the one before. The model's reasoning (a `reasoning` item, when shown) and the
answer's text (a `message` item: `output_item.added`, `content_part.added`,
`output_text.delta` ..., `output_text.done`, `content_part.done`, `output_item.done`) are
streamed as they are produced; the client tool calls a run paused on follow as
`function_call` items, then `response.completed` (`response.incomplete` when the answer hit
`max_output_tokens`) with the whole response and its usage. A failure once the stream has
begun is `response.failed` (the response with status `failed` and its `error`), and the
stream ends there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from server.errors import stream_failure
from server.responses.adapter import new_id
from server.responses.service import PlannedResponse, ResponsesService
from server.responses.wire import (
    SERVER_ERROR,
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    FunctionCall,
    OutputItem,
    OutputItemEvent,
    OutputMessage,
    OutputText,
    ReasoningDeltaEvent,
    ReasoningDoneEvent,
    ReasoningOut,
    ReasoningText,
    ResponseError,
    ResponseLifecycleEvent,
    ResponseObject,
    StreamEvent,
    TextDeltaEvent,
    TextDoneEvent,
)
from server.turns.events import ReasoningDelta, TextDelta, TurnDone
from server.turns.events import StreamEvent as TurnEvent
from server.turns.http import TurnFeed


@dataclass
class _Events:
    """Numbers and frames the events of one response, and where its streamed items are."""

    sequence: int = 0
    ids: dict[str, str] = field(
        default_factory=lambda: {"reasoning": new_id("rs"), "message": new_id("msg")}
    )
    opened: dict[str, int] = field(default_factory=dict)
    """The streamed items opened so far (`reasoning`, `message`) and their output index."""
    closed: set[str] = field(default_factory=set)
    """The streamed items done already: the reasoning, once the answer's text began."""

    def frame(self, event: StreamEvent) -> str:
        event.sequence_number = self.sequence
        self.sequence += 1
        return f"event: {event.type}\ndata: {event.model_dump_json()}\n\n"

    def lifecycle(self, kind: str, response: ResponseObject) -> str:
        return self.frame(ResponseLifecycleEvent(type=kind, response=response, sequence_number=0))

    def _part(self, kind: str, text: str) -> OutputText | ReasoningText:
        return OutputText(text=text) if kind == "message" else ReasoningText(text=text)

    def open(self, kind: str) -> list[str]:
        """A streamed item and its one content part, added (once), at the next index."""
        if kind in self.opened:
            return []
        index = self.opened[kind] = len(self.opened)
        item_id = self.ids[kind]
        item: OutputItem = (
            OutputMessage(id=item_id, status="in_progress", content=[])
            if kind == "message"
            else ReasoningOut(id=item_id, status="in_progress", content=[])
        )
        return [
            self.frame(
                OutputItemEvent(
                    type="response.output_item.added",
                    output_index=index,
                    item=item,
                    sequence_number=0,
                )
            ),
            self.frame(
                ContentPartEvent(
                    type="response.content_part.added",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    part=self._part(kind, ""),
                    sequence_number=0,
                )
            ),
        ]

    def delta(self, kind: str, text: str) -> str:
        common = {"item_id": self.ids[kind], "output_index": self.opened[kind]}
        if kind == "message":
            return self.frame(
                TextDeltaEvent(**common, content_index=0, delta=text, sequence_number=0)
            )
        return self.frame(
            ReasoningDeltaEvent(**common, content_index=0, delta=text, sequence_number=0)
        )

    def close(self, index: int, item: OutputMessage | ReasoningOut) -> list[str]:
        """A streamed item's text done, its part done, the item done (once)."""
        kind = item.type
        if kind in self.closed:
            return []
        self.closed.add(kind)
        text = item.content[0].text if item.content else ""
        common: dict[str, Any] = {"item_id": item.id, "output_index": index, "content_index": 0}
        done: StreamEvent = (
            TextDoneEvent(**common, text=text, sequence_number=0)
            if kind == "message"
            else ReasoningDoneEvent(**common, text=text, sequence_number=0)
        )
        return [
            self.frame(done),
            self.frame(
                ContentPartEvent(
                    type="response.content_part.done",
                    **common,
                    part=self._part(kind, text),
                    sequence_number=0,
                )
            ),
            self.frame(
                OutputItemEvent(
                    type="response.output_item.done",
                    output_index=index,
                    item=item,
                    sequence_number=0,
                )
            ),
        ]

    def function_call(self, index: int, item: FunctionCall) -> list[str]:
        """A call's item, added with empty arguments, its arguments whole, then done."""
        added = item.model_copy(update={"status": "in_progress", "arguments": ""})
        return [
            self.frame(
                OutputItemEvent(
                    type="response.output_item.added",
                    output_index=index,
                    item=added,
                    sequence_number=0,
                )
            ),
            self.frame(
                ArgumentsDeltaEvent(
                    item_id=item.id, output_index=index, delta=item.arguments, sequence_number=0
                )
            ),
            self.frame(
                ArgumentsDoneEvent(
                    item_id=item.id,
                    output_index=index,
                    arguments=item.arguments,
                    sequence_number=0,
                )
            ),
            self.frame(
                OutputItemEvent(
                    type="response.output_item.done",
                    output_index=index,
                    item=item,
                    sequence_number=0,
                )
            ),
        ]

    def in_stream_order(self, response: ResponseObject) -> ResponseObject:
        """The response with its items in the order they were streamed (opened ones first)."""
        rank = {kind: index for index, kind in enumerate(self.opened)}
        ordered = sorted(
            enumerate(response.output),
            key=lambda pair: (rank.get(pair[1].type, len(rank)), pair[0]),
        )
        return response.model_copy(update={"output": [item for _, item in ordered]})


def _rest(streamed: str, final: str | None) -> str:
    """What the output has beyond what was streamed (a node's text that was not streamed)."""
    if final is None:
        return ""
    return final[len(streamed) :] if final.startswith(streamed) else ""


async def response_events(
    feed: TurnFeed[TurnEvent], *, service: ResponsesService, planned: PlannedResponse
) -> AsyncIterator[str]:
    """The SSE body of a streamed response.

    The feed hands over the end of the turn once its run is done and the thread released
    (`server.turns.http`); the response is recorded before the last events are written: a
    client may continue from the response the instant it reads `response.completed`, and a
    `kill -9` right after must not lose it.
    """
    out = _Events()
    started = service.response(planned, status="in_progress")
    yield out.lifecycle("response.created", started)
    yield out.lifecycle("response.in_progress", started)
    try:
        streamed: dict[str, list[str]] = {"reasoning": [], "message": []}
        async for event in feed:
            if isinstance(event, TurnDone):
                break
            kind = {TextDelta: "message", ReasoningDelta: "reasoning"}.get(type(event))
            if kind == "message" and "reasoning" in out.opened:
                # The reasoning is done when the answer begins, as OpenAI streams it; what a
                # later model call of the run reasons (after a tool round) stays in the
                # thread, not in this response.
                thought = ReasoningOut(
                    id=out.ids["reasoning"],
                    status="completed",
                    content=[ReasoningText(text="".join(streamed["reasoning"]))],
                )
                for frame in out.close(out.opened["reasoning"], thought):
                    yield frame
            if kind is not None and kind not in out.closed:
                for frame in out.open(kind):
                    yield frame
                streamed[kind].append(event.text)
                yield out.delta(kind, event.text)
        else:
            raise RuntimeError("a turn's stream ended without its result")
        result = event.result
        text, reasoning = "".join(streamed["message"]), "".join(streamed["reasoning"])
        rest = {"message": _rest(text, result.text), "reasoning": ""}
        response = service.response(
            planned,
            status="completed",
            result=result,
            text=text + rest["message"],
            reasoning=reasoning or None,
            ids=out.ids,
        )
        response = out.in_stream_order(response)
        await service.record(planned, response, result)
        for index, item in enumerate(response.output):
            if isinstance(item, FunctionCall):
                for frame in out.function_call(index, item):
                    yield frame
                continue
            for frame in out.open(item.type):
                yield frame
            if rest[item.type]:
                yield out.delta(item.type, rest[item.type])
            for frame in out.close(index, item):
                yield frame
        # An answer cut at max_output_tokens ends `incomplete`, as OpenAI's does.
        yield out.lifecycle(f"response.{response.status}", response)
    except Exception as exc:  # noqa: BLE001 - the stream's boundary: reported in-band
        _, message, _ = stream_failure(exc)
        error = ResponseError(code=SERVER_ERROR, message=message)
        yield out.lifecycle(
            "response.failed", service.response(planned, status="failed", error=error)
        )
