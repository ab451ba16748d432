"""OpenAI's server-sent events for `/v1`: a run's chunks, framed and ended in-band on error.

The choreography around it (first event before headers, the thread released before the end)
is `server.turns.http`'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from server.chat.adapter import chunk, now, tool_call_deltas
from server.chat.wire import ChoiceDelta
from server.errors import error_body, stream_failure
from server.turns.events import StreamEvent, TextDelta, TurnDone
from server.turns.http import TurnFeed


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event: a JSON object, or `[DONE]`."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


async def sse_stream(
    feed: TurnFeed[StreamEvent], *, cid: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """OpenAI's SSE framing; an error after the first byte is one error event, then the end.

    The feed hands over the end of the turn once its run is done and the thread released
    (`server.turns.http`): the final chunk and `[DONE]` follow it.

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
        async for event in feed:
            if isinstance(event, TurnDone):
                result = event.result
                break
            if isinstance(event, TextDelta) and not opened:
                yield delta_chunk({"content": ""})  # as OpenAI: an answer's text opens with ""
            field = "content" if isinstance(event, TextDelta) else "reasoning_content"
            yield delta_chunk({field: event.text})
        else:
            raise RuntimeError("a turn's stream ended without its result")
        for delta in tool_call_deltas(result.tool_calls):
            yield delta_chunk(delta)
        if not opened:  # an empty answer
            yield delta_chunk({"content": ""})
        yield sse(chunk(**common, finish_reason=result.finish_reason))
        if include_usage:
            yield sse(chunk(cid=cid, model=model, created=created, usage=result.usage))
        yield sse("[DONE]")
    except Exception as exc:  # noqa: BLE001 - the stream's boundary: reported in-band
        yield error_event(exc)


def error_event(exc: Exception) -> str:
    """The one SSE event that ends a `/v1` stream which failed after its first byte."""
    status, message, code = stream_failure(exc)
    return sse(error_body(status, message, code=code))
