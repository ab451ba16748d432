"""The LangServe door at `/agent`: invoke, batch, stream, stream_events, schemas, playground.

Every LangServe import of the service lives here, so the door can be replaced (LangServe is
deprecated upstream) without touching anything else.

The compiled graphs are opened by the lifespan, after `add_routes` has to be given a runnable.
So the routes serve `AgentDoor`, a small runnable that owns no graph: for each request, the
`per_req_config_modifier` (which sees the request) picks the lifespan's graph and puts it in
the run's config, and `AgentDoor` hands the run to that graph (its config, its context).

Schemas: LangServe validates against pydantic models built from the runnable's schemas; the
graph's `InputState`/`OutputState` are `typing.TypedDict`s, which pydantic rejects on Python
3.11, so the door publishes `AgentInput`/`AgentOutput`, mirrors of them. The input's
`messages` carry LangServe's chat widget, and the config declares `thread_id` (LangServe drops
undeclared configurables), so the stock playground holds a conversation.

Threads: `configurable.thread_id` in the request's config, else the `X-Thread-Id` header,
names the thread; it is namespaced by the caller's API key (`server.threads`) before it
reaches the checkpointer. `configurable.checkpoint_id` with it runs from (or branches at)
an earlier checkpoint. Without a thread id a run is stateless, as on `/v1`: the graph without
a checkpointer runs, and nothing is stored. On a thread that has messages, a client may resend
the whole conversation (the playground does): as on `/v1`, only the messages after the input's
last AI message are added.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast, overload

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage
from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig
from langchain_core.tracers.log_stream import (
    LogStreamCallbackHandler,
    RunLog,
    RunLogPatch,
    _astream_log_implementation,
)
from langserve import add_routes
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError
from typing_extensions import TypedDict

from graph.builder import AgentGraph
from graph.context import Context
from graph.errors import ErrorCode
from graph.state import InputState
from server.auth import authenticate, caller_of
from server.errors import OpenAIHTTPError
from server.langserve.threads import router as threads_router
from server.lifespan import AppState
from server.ops.locks import ThreadLocks
from server.settings import Settings
from server.threads import scoped_thread_id

__all__ = [
    "PATH",
    "THREAD_HEADER",
    "AgentDoor",
    "AgentInput",
    "AgentOutput",
    "context_from_settings",
    "mount_agent_routes",
    "new_messages",
]

PATH = "/agent"
THREAD_HEADER = "X-Thread-Id"
_PLAYGROUND_RENDER_SECONDS = 0.25
_RUN_KEY = "__agent_door_run"
"""Private configurable key carrying the chosen graph from the request to `AgentDoor`."""


@dataclass(frozen=True)
class _DoorRun:
    """What the request decided: which graph runs, with which per-run options."""

    graph: AgentGraph
    context: Context
    locks: ThreadLocks
    """One run per thread, shared with the /v1 door (a second concurrent run gets 409)."""


class AgentTurn(TypedDict):
    """One turn: the new messages, appended to the thread."""

    messages: Annotated[
        list[AnyMessage],
        Field(
            description=(
                "The turn's new messages, LangChain-shaped ({'type': 'human', 'content': ...}). "
                "On a thread, only those after the last AI message are added."
            ),
            # LangServe's playground renders this list as a chat, one human message per run.
            json_schema_extra={"extra": {"widget": {"type": "chat", "input": "messages"}}},
        ),
    ]


class AgentInput(RootModel[AgentTurn]):
    """The input schema: a root model, so LangServe hands the run a plain dict.

    (LangServe unpacks a field model through `instance.model_fields`, which pydantic 2.11
    deprecates with a warning on every request; a root model's root is passed through.)
    """


class AgentOutput(BaseModel):
    """What a run returns (the graph's `OutputState`): the thread's messages and the turn."""

    model_config = ConfigDict(extra="allow")  # fields the graph adds later pass through

    messages: list[AnyMessage]
    route: str | None = None
    """The router's decision: `model`, or `respond` without calling a model."""
    provider: str | None = None
    """The provider target (`kind:model`) that produced the answer."""
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    """Every provider call of the turn, failed, skipped or successful."""
    usage: dict[str, int] | None = None
    finish_reason: str | None = None


def context_from_settings(settings: Settings, model: str | None) -> Context:
    """Per-run options of an `/agent` run: the requested model alias, the server's limits."""
    return Context(
        model=model,
        max_tool_rounds=settings.max_tool_rounds,
        tool_timeout=settings.tool_timeout,
        tool_output_max_chars=settings.tool_output_max_chars,
        max_tools_offered=settings.max_tools_offered,
        max_input_chars=settings.max_input_chars,
    )


@dataclass(frozen=True)
class _Prepared:
    graph: AgentGraph
    input: InputState
    config: RunnableConfig
    context: Context
    hold: AbstractAsyncContextManager[None]
    """The thread's lock for the run (nothing to hold for a stateless run)."""


def new_messages(messages: list[AnyMessage]) -> list[AnyMessage]:
    """The messages after the last AI message: what a resent conversation adds to a thread."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], AIMessage):
            return messages[index + 1 :]
    return messages


class AgentDoor(Runnable[dict[str, Any], dict[str, Any]]):
    """Runs the graph that the request's config names; publishes the graph's schemas."""

    name = "agent"

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """`AgentInput`: `{"messages": [...]}`, appended to the thread."""
        return AgentInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """`AgentOutput`: the thread's messages and the facts of the turn."""
        return AgentOutput

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """The configurable fields a client may send (LangServe drops undeclared ones)."""
        return [
            ConfigurableFieldSpec(
                id="thread_id",
                annotation=str,
                name="Thread id",
                description=(
                    "Conversation to continue (created on first use). Empty: a stateless run "
                    "that stores nothing. The X-Thread-Id header is used when this is empty."
                ),
                default="",
            ),
            ConfigurableFieldSpec(
                id="checkpoint_id",
                annotation=str,
                name="Checkpoint id",
                description=(
                    "Run from this earlier checkpoint of the thread (a branch); see "
                    "GET /agent/threads/{thread_id}/history. Empty: the latest one."
                ),
                default="",
            ),
            ConfigurableFieldSpec(
                id="model",
                annotation=str,
                name="Model alias",
                description="A model alias of AGENT_MODELS. Empty: the default alias.",
                default="",
            ),
        ]

    async def _prepare(self, input: dict[str, Any], config: RunnableConfig | None) -> _Prepared:
        configurable = dict((config or {}).get("configurable") or {})
        run = configurable.pop(_RUN_KEY, None)
        if not isinstance(run, _DoorRun):
            raise RuntimeError("AgentDoor runs only behind the /agent routes")
        run_config = cast(RunnableConfig, {**(config or {}), "configurable": configurable})
        messages: list[AnyMessage] = list(input.get("messages") or [])
        hold: AbstractAsyncContextManager[None] = contextlib.nullcontext()
        if "thread_id" in configurable:
            hold = run.locks.hold(str(configurable["thread_id"]))
            snapshot = await run.graph.aget_state(run_config)
            if snapshot.values.get("messages"):
                messages = new_messages(messages)
        return _Prepared(run.graph, InputState(messages=messages), run_config, run.context, hold)

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Not supported: the served graphs use async checkpointers, so runs are async."""
        raise NotImplementedError("the /agent door runs the graph asynchronously only")

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the graph to the end; returns its output (`OutputState`)."""
        run = await self._prepare(input, config)
        async with run.hold:
            output = await run.graph.ainvoke(run.input, run.config, context=run.context)
        return dict(output)

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream one `{node: update}` per step, so a client sees each node's decision."""
        run = await self._prepare(input, config)
        async with run.hold:
            async for update in run.graph.astream(
                run.input, run.config, context=run.context, stream_mode="updates"
            ):
                yield cast(dict[str, Any], update)

    @overload
    def astream_log(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        diff: Literal[True] = True,
        with_streamed_output_list: bool = True,
        include_names: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[RunLogPatch]: ...

    @overload
    def astream_log(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        diff: Literal[False],
        with_streamed_output_list: bool = True,
        include_names: Sequence[str] | None = None,
        include_types: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_names: Sequence[str] | None = None,
        exclude_types: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[RunLog]: ...

    async def astream_log(
        self,
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
        """The run log that the playground shows (each node's run is an intermediate step).

        The streamed output is `astream`'s, plus the answer as a last `AIMessageChunk`: the
        playground's chat widget fills the conversation's AI message from that final output.
        langchain-core deprecates `astream_log` with a warning on every call, yet LangServe's
        playground is built on it; this is the same implementation without the warning.
        """
        answering = _AnswerAfterUpdates(self)
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

    def __init__(self, door: AgentDoor) -> None:
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


def _configured(configurable: dict[str, Any], key: str) -> str | None:
    value = configurable.get(key)
    return value.strip() or None if isinstance(value, str) else None


async def _per_request_config(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """Pick the graph and the namespaced thread of one run, from its config and headers."""
    app: AppState = request.state.agent
    caller = caller_of(request)
    configurable = dict(config.get("configurable") or {})
    model = _configured(configurable, "model")
    if model is not None:
        app.deps.providers.resolve(model)  # an unknown alias is a 404 before the run starts
    thread_id = _configured(configurable, "thread_id") or (
        request.headers.get(THREAD_HEADER, "").strip() or None
    )
    checkpoint_id = _configured(configurable, "checkpoint_id")
    run_configurable: dict[str, Any] = {}
    if thread_id is None:
        if checkpoint_id is not None:
            raise OpenAIHTTPError(
                400,
                "configurable.checkpoint_id needs a thread: set configurable.thread_id too.",
                code=ErrorCode.INVALID_REQUEST,
                param="config.configurable.checkpoint_id",
            )
        graph = app.stateless_graph
    else:
        graph = app.graph
        run_configurable["thread_id"] = scoped_thread_id(caller.key_id, thread_id)
        if checkpoint_id is not None:
            run_configurable["checkpoint_id"] = checkpoint_id
    run_configurable[_RUN_KEY] = _DoorRun(
        graph, context_from_settings(app.settings, model), app.chat.locks
    )
    return {**config, "configurable": run_configurable}


class _ClientInputRoute(APIRoute):
    """A route whose client input LangServe validates outside its own error translation.

    `/batch` checks each input against the graph's input schema with a bare
    `model_validate`, so a malformed input raised pydantic's `ValidationError` and became a
    500; it is the client's mistake, a 400 like the other endpoints give.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, with the batch's input validation errors made a 400."""
        handler = super().get_route_handler()
        if not self.path.endswith("/batch"):
            return handler

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ValidationError as error:
                raise RequestValidationError(error.errors()) from error

        return handle


def mount_agent_routes(app: FastAPI) -> None:
    """Add the `/agent` routes (LangServe and thread inspection), behind the API keys."""
    router = APIRouter(
        prefix=PATH, dependencies=[Depends(authenticate)], route_class=_ClientInputRoute
    )
    add_routes(
        router,
        AgentDoor(),
        per_req_config_modifier=_per_request_config,
        enable_feedback_endpoint=False,
        enable_public_trace_link_endpoint=False,
        playground_type="default",
    )
    router.include_router(threads_router)
    app.include_router(router)
