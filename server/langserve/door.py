"""`AgentDoor`: the runnable LangServe serves at `/agent`, over the lifespan's graphs.

The compiled graphs are opened by the lifespan, after `add_routes` has to be given a runnable.
So the routes serve `AgentDoor`, a small runnable that owns no graph: for each request, the
routes' config modifier (which sees the request) decides a `DoorRun` and puts it in the run's
config, and `AgentDoor` runs it through the shared run kit (`server.turns.prepare`): the thread's
lock, reconciliation of the input with the stored thread, then the graph.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, cast, overload

from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig
from langchain_core.tracers.log_stream import RunLog, RunLogPatch
from pydantic import BaseModel
from starlette.requests import Request

from server.langserve.playground import run_log
from server.langserve.schemas import AgentInput, AgentOutput
from server.turns.disconnect import until_disconnect
from server.turns.kit import TurnKit
from server.turns.lease import ThreadLease
from server.turns.reconcile import stamp_client_messages
from server.turns.request import TurnRequest
from server.turns.turn import Turn

__all__ = ["RUN_KEY", "AgentDoor", "DoorRun"]

RUN_KEY = "__agent_door_run"
"""Private configurable key carrying the request's `DoorRun` to `AgentDoor`."""


@dataclass(frozen=True)
class DoorRun:
    """What the request decided: its turn (the messages come with the input), and the kit."""

    kit: TurnKit
    turn: TurnRequest
    """The turn without its messages: `AgentDoor` adds them from the run's input."""
    lease: ThreadLease | None = None
    """The thread's lock, taken already by a streaming route (its run releases it)."""
    request: Request | None = None
    """The HTTP request: a client that leaves cancels a run it waits for (invoke, batch)."""


class AgentDoor(Runnable[dict[str, Any], dict[str, Any]]):
    """Runs the graph that the request's config names; publishes the graph's schemas."""

    name = "agent"

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """`AgentInput`: `{"messages": [...]}`, reconciled with the thread."""
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

    @asynccontextmanager
    async def _run(
        self, input: dict[str, Any], config: RunnableConfig | None
    ) -> AsyncIterator[tuple[Turn, Request | None]]:
        """The turn the request decided, opened by the kit (its thread held until exit)."""
        configurable = dict((config or {}).get("configurable") or {})
        door = configurable.pop(RUN_KEY, None)
        if not isinstance(door, DoorRun):
            raise RuntimeError("AgentDoor runs only behind the /agent routes")
        run_config = cast(RunnableConfig, {**(config or {}), "configurable": configurable})
        # Stamped on arrival, as on /v1: a node may rewrite them and still be matched.
        messages = stamp_client_messages(list(input.get("messages") or []))
        turn = replace(door.turn, messages=messages, config=run_config)
        async with door.kit.open(turn, lease=door.lease) as opened:
            yield opened, door.request

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Not supported: the served graphs use async checkpointers, so runs are async."""
        raise NotImplementedError("the /agent door runs the graph asynchronously only")

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the graph to the end; returns its output (`OutputState`)."""
        async with self._run(input, config) as (turn, request):
            # LangServe waits for the run without watching the client: a client that leaves
            # cancels it here, as on the other doors (each input of a batch alike).
            work = turn.complete()
            result = await (work if request is None else until_disconnect(request, work))
        return result.output

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream one `{node: update}` per step, so a client sees each node's decision."""
        async with self._run(input, config) as (turn, _):
            async for update in turn.updates():
                yield update

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
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[RunLogPatch] | AsyncIterator[RunLog]:
        """The run log that the playground shows (`server.langserve.playground.run_log`)."""
        async for item in run_log(self, input, config, **kwargs):
            yield item
