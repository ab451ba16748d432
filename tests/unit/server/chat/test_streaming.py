"""The SSE framing of a run, in-band errors, and a response that always frees the run."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import psycopg
import psycopg_pool
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall
from starlette.types import Message

from graph.errors import AllProvidersFailedError, ModelNotFoundError
from graph.state import Usage
from server.chat.streaming import sse_stream
from server.turns.disconnect import ClosingStreamingResponse
from server.turns.events import ProgressDelta, StreamEvent, TextDelta, TurnDone
from server.turns.http import TurnFeed
from server.turns.pump import EventPump
from server.turns.result import TurnResult

USAGE = Usage(input_tokens=2, output_tokens=3, total_tokens=5)
CALL = ToolCall(name="get_weather", args={"city": "Oslo"}, id="c1")


class Pause:
    """An interrupt as LangGraph returns it in `__interrupt__`."""

    def __init__(self, calls: list[ToolCall]) -> None:
        self.value = {"tool_calls": calls}


def done(text: str = "", **output: Any) -> TurnDone:
    messages = [HumanMessage("q", id="client-1"), AIMessage(text)]
    return TurnDone(TurnResult.of({"messages": messages, **output}))


class Recorder:
    """What happened, in order: the run's events ending, the run being released, frames."""

    def __init__(self) -> None:
        self.log: list[str] = []

    async def source(self, items: list[StreamEvent | Exception]) -> AsyncGenerator[Any, None]:
        for item in items:
            if isinstance(item, Exception):
                raise item
            yield item
        await asyncio.sleep(0.02)  # the last checkpoint is written after the last event
        self.log.append("run ended")

    async def released(self) -> None:
        self.log.append("released")


async def frames(
    items: list[StreamEvent | Exception], *, include_usage: bool = True
) -> tuple[list[Any], Recorder, AsyncExitStack]:
    """Run `sse_stream` over the items; each frame decoded (JSON, or the `[DONE]` string)."""
    recorder = Recorder()
    pump: EventPump[StreamEvent] = EventPump(recorder.source(items))
    held = AsyncExitStack()
    held.push_async_callback(recorder.released)
    first = await pump.next()
    decoded: list[Any] = []
    feed = TurnFeed(first, pump, held)
    async for frame in sse_stream(feed, cid="chatcmpl-1", model="m", include_usage=include_usage):
        assert frame.startswith("data: ")
        assert frame.endswith("\n\n")
        data = frame[len("data: ") : -2]
        decoded.append(data if data == "[DONE]" else json.loads(data))
        recorder.log.append("frame")
    await pump.aclose()
    return decoded, recorder, held


def deltas(decoded: list[Any]) -> list[dict[str, Any]]:
    return [f["choices"][0]["delta"] for f in decoded if isinstance(f, dict) and f.get("choices")]


async def test_role_text_finish_usage_then_done(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(1000)
    monkeypatch.setattr("server.chat.streaming.now", lambda: next(clock))
    events: list[Any] = [TextDelta("He"), TextDelta("llo"), done("Hello", usage=USAGE)]
    decoded, _, _ = await frames(events)

    assert deltas(decoded) == [
        {"role": "assistant", "content": ""},
        {"content": "He"},
        {"content": "llo"},
        {},
    ]
    assert decoded[-1] == "[DONE]"
    finish, usage = decoded[-3], decoded[-2]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    chunks = decoded[:-1]
    assert {c["id"] for c in chunks} == {"chatcmpl-1"}
    assert {c["model"] for c in chunks} == {"m"}
    assert {c["created"] for c in chunks} == {1000}  # one `created` for the whole stream
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_without_include_usage_there_is_no_usage_chunk_or_field() -> None:
    decoded, _, _ = await frames([TextDelta("x"), done("x", usage=USAGE)], include_usage=False)
    assert decoded[-1] == "[DONE]"
    assert all("usage" not in f for f in decoded[:-1])
    assert decoded[-2]["choices"][0]["finish_reason"] == "stop"


async def test_progress_is_reasoning_content_and_a_turn_without_text_still_has_role() -> None:
    decoded, _, _ = await frames([ProgressDelta("Route: model\n"), done(finish_reason="length")])
    assert deltas(decoded)[:2] == [
        {"role": "assistant", "content": None, "reasoning_content": "Route: model\n"},
        {},
    ]
    assert decoded[-3]["choices"][0]["finish_reason"] == "length"


async def test_an_empty_answer_still_opens_with_role_and_empty_content() -> None:
    decoded, _, _ = await frames([done(finish_reason="stop")])
    assert deltas(decoded)[0] == {"role": "assistant", "content": ""}
    assert all(not delta for delta in deltas(decoded)[1:])


async def test_pending_client_calls_are_tool_call_deltas_before_the_finish() -> None:
    other = ToolCall(name="lookup", args={}, id="c2")
    paused = done(__interrupt__=[Pause([CALL]), Pause([other])], finish_reason="tool_calls")
    decoded, _, _ = await frames([paused])

    calls = [d["tool_calls"][0] for d in deltas(decoded) if "tool_calls" in d]
    assert [(c["index"], c["id"], c["function"]["name"]) for c in calls] == [
        (0, "c1", "get_weather"),
        (1, "c2", "lookup"),
    ]
    # As OpenAI: the first tool call opens the message, with `content: null` (not "").
    assert "tool_calls" in deltas(decoded)[0]  # no role chunk of its own before it
    first, second = (d for d in deltas(decoded) if "tool_calls" in d)
    assert (first["role"], first["content"]) == ("assistant", None)
    assert list(first) == ["role", "content", "tool_calls"]
    assert "content" not in second
    assert "role" not in second
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert decoded[-3]["choices"][0]["finish_reason"] == "tool_calls"


async def test_the_run_is_over_and_released_before_the_final_chunks() -> None:
    decoded, recorder, _ = await frames([TextDelta("a"), done("a", usage=USAGE)])
    # role + text, then the run ends and is released, then finish, usage, [DONE].
    assert recorder.log == ["frame", "frame", "run ended", "released", "frame", "frame", "frame"]
    assert len(decoded) == 5


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (AllProvidersFailedError("m", []), "api_error", "all_providers_failed"),
        (ModelNotFoundError("x", ["m"]), "not_found_error", "model_not_found"),
        (psycopg_pool.PoolTimeout("no connection"), "api_error", "checkpointer_unavailable"),
        (psycopg.errors.LockNotAvailable("locked"), "api_error", None),
        (RuntimeError("boom"), "api_error", None),
    ],
)
async def test_an_error_after_the_first_byte_is_one_error_event_and_the_end(
    error: Exception, kind: str, code: str | None
) -> None:
    decoded, recorder, held = await frames([TextDelta("par"), error, done()])

    assert deltas(decoded) == [{"role": "assistant", "content": ""}, {"content": "par"}]
    last = decoded[-1]
    assert len(decoded) == 3  # no finish chunk, no [DONE]
    assert set(last) == {"error"}
    assert (last["error"]["type"], last["error"]["code"]) == (kind, code)
    if isinstance(error, RuntimeError):
        assert "boom" not in last["error"]["message"]  # internals are logged, not sent
    # The response (ClosingStreamingResponse) releases what the run holds.
    assert "released" not in recorder.log
    await held.aclose()
    assert recorder.log[-1] == "released"


# --- ClosingStreamingResponse --------------------------------------------------------------


async def body(parts: list[str]) -> AsyncIterator[str]:
    for part in parts:
        yield part


def scope() -> dict[str, Any]:
    return {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "POST", "path": "/"}


async def test_the_response_frees_the_run_once_after_the_whole_body() -> None:
    released: list[str] = []
    sent: list[Message] = []
    stack = AsyncExitStack()
    stack.callback(lambda: released.append(f"after {len(sent)} messages"))
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    response = ClosingStreamingResponse(body(["a", "b"]), on_close=stack)
    await response(scope(), receive, send)

    assert [m.get("body") for m in sent] == [None, b"a", b"b", b""]
    assert released == ["after 4 messages"]


async def test_a_client_that_leaves_before_the_first_byte_still_frees_the_run() -> None:
    released: list[bool] = []
    stack = AsyncExitStack()
    stack.callback(lambda: released.append(True))
    started = asyncio.Event()
    never = asyncio.Event()

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        started.set()
        await never.wait()  # the client never reads

    response = ClosingStreamingResponse(body(["a"]), on_close=stack)
    await asyncio.wait_for(response(scope(), receive, send), timeout=5)
    assert released == [True]


async def test_a_cancelled_response_frees_the_run_shielded_from_the_cancellation() -> None:
    released: list[str] = []
    stack = AsyncExitStack()

    async def release() -> None:
        await asyncio.sleep(0.01)  # an await inside the release is not cut by the cancel
        released.append("done")

    stack.push_async_callback(release)
    blocked = asyncio.Event()

    async def receive() -> Message:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        blocked.set()
        await asyncio.Event().wait()

    response = ClosingStreamingResponse(body(["a"]), on_close=stack)
    # The server cancels a request's scope, which cancels every await inside it again.
    with anyio.CancelScope() as request_scope:
        async with anyio.create_task_group() as group:
            group.start_soon(response, scope(), receive, send)
            await blocked.wait()
            request_scope.cancel()
    assert request_scope.cancelled_caught
    assert released == ["done"]
