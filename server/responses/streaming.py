"""OpenAI's Responses event stream: `response.created` to `response.completed`, numbered.

Every event is an SSE `event: <type>` / `data: <event>` pair with a `sequence_number` one
more than the one before. The answer's text is streamed as it is produced, inside a
`message` item (`output_item.added`, `content_part.added`, `output_text.delta` ...,
`output_text.done`, `content_part.done`, `output_item.done`); the client tool calls a run
paused on follow as `function_call` items, then `response.completed` with the whole response
and its usage. A failure once the stream has begun is `response.failed` (the response with
status `failed` and its `error`), and the stream ends there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
import psycopg

from graph.errors import AgentError
from server.errors import STORE_UNAVAILABLE_MESSAGE
from server.event_pump import EventPump
from server.responses.adapter import new_id
from server.responses.service import ResponsesService, Turn
from server.responses.wire import (
    SERVER_ERROR,
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    FunctionCall,
    OutputItemEvent,
    OutputMessage,
    OutputText,
    ResponseError,
    ResponseLifecycleEvent,
    ResponseObject,
    StreamEvent,
    TextDeltaEvent,
    TextDoneEvent,
)
from server.run_events import StreamEvent as RunEvent
from server.run_events import TextDelta, TurnDone, final_text
from server.store_errors import store_unavailable

logger = logging.getLogger(__name__)

SERVER_ERROR_MESSAGE = "The server had an error while processing your request."


@dataclass
class _Events:
    """Numbers and frames the events of one response."""

    sequence: int = 0
    message_id: str = field(default_factory=lambda: new_id("msg"))
    message_open: bool = False

    def frame(self, event: StreamEvent) -> str:
        event.sequence_number = self.sequence
        self.sequence += 1
        return f"event: {event.type}\ndata: {event.model_dump_json()}\n\n"

    def lifecycle(self, kind: str, response: ResponseObject) -> str:
        return self.frame(ResponseLifecycleEvent(type=kind, response=response, sequence_number=0))

    def open_message(self) -> list[str]:
        """The message item and its text part, added (once)."""
        if self.message_open:
            return []
        self.message_open = True
        item = OutputMessage(id=self.message_id, status="in_progress", content=[])
        return [
            self.frame(
                OutputItemEvent(
                    type="response.output_item.added", output_index=0, item=item, sequence_number=0
                )
            ),
            self.frame(
                ContentPartEvent(
                    type="response.content_part.added",
                    item_id=self.message_id,
                    output_index=0,
                    content_index=0,
                    part=OutputText(text=""),
                    sequence_number=0,
                )
            ),
        ]

    def delta(self, text: str) -> str:
        return self.frame(
            TextDeltaEvent(
                item_id=self.message_id,
                output_index=0,
                content_index=0,
                delta=text,
                sequence_number=0,
            )
        )

    def close_message(self, item: OutputMessage) -> list[str]:
        text = item.content[0].text if item.content else ""
        return [
            self.frame(
                TextDoneEvent(
                    item_id=item.id, output_index=0, content_index=0, text=text, sequence_number=0
                )
            ),
            self.frame(
                ContentPartEvent(
                    type="response.content_part.done",
                    item_id=item.id,
                    output_index=0,
                    content_index=0,
                    part=OutputText(text=text),
                    sequence_number=0,
                )
            ),
            self.frame(
                OutputItemEvent(
                    type="response.output_item.done", output_index=0, item=item, sequence_number=0
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


async def response_events(
    first: RunEvent,
    events: EventPump[RunEvent],
    *,
    run_held: AsyncExitStack,
    service: ResponsesService,
    turn: Turn,
) -> AsyncIterator[str]:
    """The SSE body of a streamed response.

    `run_held` is what the run holds (its event pump, the thread lock). Once the run is done
    the response is recorded, then `run_held` is closed, before the last events are
    written: a client may continue from the response the instant it reads
    `response.completed`, and a `kill -9` right after must not lose it.
    """
    out = _Events()
    started = service.response(turn, status="in_progress")
    yield out.lifecycle("response.created", started)
    yield out.lifecycle("response.in_progress", started)
    try:
        streamed: list[str] = []
        event = first
        while not isinstance(event, TurnDone):
            if isinstance(event, TextDelta):
                for frame in out.open_message():
                    yield frame
                streamed.append(event.text)
                yield out.delta(event.text)
            event = await events.next()
        await events.join()  # the run's generator has returned: its checkpoints are written
        text = "".join(streamed)
        final = final_text(event.output)
        rest = final[len(text) :] if final.startswith(text) else ""
        response = service.response(
            turn,
            status="completed",
            output=event.output,
            text=text + rest,
            message_id=out.message_id,
        )
        await service.record(turn, response)
        with anyio.CancelScope(shield=True):  # half a release would leave the thread busy
            await run_held.aclose()
        for index, item in enumerate(response.output):
            if isinstance(item, OutputMessage):
                for frame in out.open_message():
                    yield frame
                if rest:
                    yield out.delta(rest)
                for frame in out.close_message(item):
                    yield frame
            else:
                for frame in out.function_call(index, item):
                    yield frame
        yield out.lifecycle("response.completed", response)
    except AgentError as exc:
        yield out.lifecycle("response.failed", _failed(service, turn, exc.message))
    except psycopg.OperationalError as exc:
        if store_unavailable(exc):
            yield out.lifecycle(
                "response.failed", _failed(service, turn, STORE_UNAVAILABLE_MESSAGE)
            )
        else:
            logger.exception("unhandled database error while streaming a response")
            yield out.lifecycle("response.failed", _failed(service, turn, SERVER_ERROR_MESSAGE))
    except Exception:  # the stream's boundary: headers are sent, so report it in-band
        logger.exception("unhandled error while streaming a response")
        yield out.lifecycle("response.failed", _failed(service, turn, SERVER_ERROR_MESSAGE))


def _failed(service: ResponsesService, turn: Turn, message: str) -> ResponseObject:
    error = ResponseError(code=SERVER_ERROR, message=message)
    return service.response(turn, status="failed", error=error)
