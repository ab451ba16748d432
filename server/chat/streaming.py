"""OpenAI's server-sent events for `/v1`: a run's chunks, framed and ended in-band on error.

The response that frees the run is `server.turns.disconnect.ClosingStreamingResponse`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import psycopg

from graph.errors import AgentError, ErrorCode
from server.chat.adapter import chunk, now, tool_call_deltas
from server.chat.wire import ChoiceDelta
from server.errors import (
    STORE_UNAVAILABLE_MESSAGE,
    agent_error_status,
    error_body,
)
from server.store_errors import store_unavailable
from server.turns.events import StreamEvent, TextDelta, TurnDone, pending_tool_calls
from server.turns.pump import EventPump

logger = logging.getLogger(__name__)


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event: a JSON object, or `[DONE]`."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


async def sse_stream(
    first: StreamEvent,
    events: EventPump[StreamEvent],
    *,
    run_held: AsyncExitStack,
    cid: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """OpenAI's SSE framing; an error after the first byte is one error event, then the end.

    `run_held` is what the run holds (its event pump, the thread lock). It is closed as soon
    as the run is done and before the final chunk and `[DONE]` are written: a client may
    send the next turn the instant it reads `[DONE]`, and a `kill -9` right after must not
    lose the turn, so by then the last checkpoint is committed and the thread is free.

    The first chunk opens the assistant message as OpenAI's does: `"content": ""` before
    text, `"content": null` beside the first tool call (or reasoning) when no text came
    first, so that a client adds no empty text part to a tool-calling answer.
    """
    created = now()
    common: dict[str, Any] = {
        "cid": cid,
        "model": model,
        "created": created,
        "with_usage_field": include_usage,
    }
    opened = False

    def delta_chunk(delta: ChoiceDelta | dict[str, Any]) -> str:
        """A chunk of `delta`; the first one opens the message (`role`, `content: null`)."""
        nonlocal opened
        payload = chunk(**common, delta=delta)
        if not opened:
            choice = payload["choices"][0]
            choice["delta"] = {"role": "assistant", "content": None, **choice["delta"]}
            opened = True
        return sse(payload)

    try:
        if isinstance(first, TextDelta):  # as OpenAI: an answer's text opens with ""
            yield delta_chunk({"content": ""})
        event: StreamEvent = first
        while not isinstance(event, TurnDone):
            field = "content" if isinstance(event, TextDelta) else "reasoning_content"
            yield delta_chunk({field: event.text})
            event = await events.next()
        await events.join()  # the run's generator has returned: its checkpoints are written
        with anyio.CancelScope(shield=True):  # half a release would leave the thread busy
            await run_held.aclose()
        for delta in tool_call_deltas(pending_tool_calls(event.output)):
            yield delta_chunk(delta)
        if not opened:  # an empty answer
            yield delta_chunk({"content": ""})
        finish = str(event.output.get("finish_reason") or "stop")
        yield sse(chunk(**common, finish_reason=finish))
        if include_usage:
            usage = event.output.get("usage")
            yield sse(chunk(cid=cid, model=model, created=created, usage=usage))
        yield sse("[DONE]")
    except Exception as exc:  # noqa: BLE001 - the stream's boundary: reported in-band
        yield error_event(exc)


def error_event(exc: Exception) -> str:
    """The one SSE event that ends a `/v1` stream which failed after its first byte.

    Called from a stream's `except Exception` boundary: an agent error or an unreachable
    store keeps its status and code; anything else is logged and reported as a 500.
    """
    if isinstance(exc, AgentError):
        status, _ = agent_error_status(exc)
        return sse(error_body(status, exc.message, code=exc.code))
    if isinstance(exc, psycopg.OperationalError) and store_unavailable(exc):
        return sse(
            error_body(503, STORE_UNAVAILABLE_MESSAGE, code=ErrorCode.CHECKPOINTER_UNAVAILABLE)
        )
    logger.error("unhandled error while streaming", exc_info=exc)
    return sse(error_body(500, "The server had an error while processing your request."))
