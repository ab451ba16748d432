"""The run log LangServe's playground is built on (`astream_log`), for `AgentDoor`.

The streamed output is the door's `astream` (one `{node: update}` per step), plus the
answer as a last `AIMessageChunk`: the playground's chat widget fills the conversation's AI
message from that final output. langchain-core deprecates `astream_log` with a warning on
every call, yet the playground is built on it; this is the same implementation without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tracers.log_stream import (
    LogStreamCallbackHandler,
    RunLog,
    RunLogPatch,
    _astream_log_implementation,
)

_PLAYGROUND_RENDER_SECONDS = 0.25


async def run_log(
    door: Runnable[dict[str, Any], dict[str, Any]],
    input: Any,
    config: RunnableConfig | None = None,
    *,
    diff: bool = True,
    with_streamed_output_list: bool = True,
    include_names: Sequence[str] | None = None,
    include_types: Sequence[str] | None = None,
    include_tags: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    exclude_types: Sequence[str] | None = None,
    exclude_tags: Sequence[str] | None = None,
    **kwargs: Any,
) -> AsyncIterator[RunLogPatch] | AsyncIterator[RunLog]:
    """`door.astream`'s run log, each node's run an intermediate step, the answer last."""
    answering = _AnswerAfterUpdates(door)
    stream = LogStreamCallbackHandler(
        auto_close=False,
        include_names=include_names,
        include_types=include_types,
        include_tags=include_tags,
        exclude_names=exclude_names,
        exclude_types=exclude_types,
        exclude_tags=exclude_tags,
        _schema_format="original",
    )
    if diff:
        async for patch in _astream_log_implementation(
            answering,
            input,
            config,
            diff=True,
            stream=stream,
            with_streamed_output_list=with_streamed_output_list,
            **kwargs,
        ):
            yield patch
    else:
        async for log in _astream_log_implementation(
            answering,
            input,
            config,
            diff=False,
            stream=stream,
            with_streamed_output_list=with_streamed_output_list,
            **kwargs,
        ):
            yield log


class _AnswerAfterUpdates(Runnable[dict[str, Any], Any]):
    """`AgentDoor.astream`'s updates, then the turn's last AI message as an `AIMessageChunk`."""

    name = "agent"

    def __init__(self, door: Runnable[dict[str, Any], dict[str, Any]]) -> None:
        self._door = door

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """Not supported: only streamed, by `AgentDoor.astream_log`."""
        raise NotImplementedError("only streamed, by AgentDoor.astream_log")

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Each node's update as it comes, then the answer."""
        answer: AIMessage | None = None
        async for update in self._door.astream(input, config, **kwargs):
            for written in update.values():
                messages = written.get("messages") if isinstance(written, dict) else None
                answer = next(
                    (m for m in reversed(messages or []) if isinstance(m, AIMessage)), answer
                )
            yield update
        if answer is not None:
            # The widget writes the answer into the message its last render added, and when
            # the stream ends rebuilds the conversation from its last render: a moment for a
            # render before and after the answer (a fast run would otherwise lose it on screen).
            await asyncio.sleep(_PLAYGROUND_RENDER_SECONDS)
            yield AIMessageChunk(content=answer.content, id=answer.id)
            await asyncio.sleep(_PLAYGROUND_RENDER_SECONDS)
