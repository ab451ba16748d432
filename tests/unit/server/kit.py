"""The `/v1` core without a server: the real graph on the offline model, in memory, through
the turn kit as the door uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import StateSnapshot
from starlette.requests import Request

from graph.builder import AgentGraph, build_graph
from nodes.deps import AgentDeps
from server.auth import ANONYMOUS, Caller
from server.chat import service
from server.chat.protocol import ChatCompletionRequest
from server.settings import Settings
from server.stores.locks import ThreadLocks
from server.stores.ratelimit import RateLimiter
from server.stores.resources import cooldown_store
from server.telemetry.metrics import Metrics
from server.turns.events import StreamEvent
from server.turns.kit import TurnKit
from server.turns.request import TurnRequest
from server.turns.threads import ThreadRef
from server.turns.turn import LatestCheckpoint, Turn
from server.wiring.services import build_agent_deps


@dataclass
class Chat:
    """The turn kit over the checkpointed and the stateless graph, and ways to look inside."""

    settings: Settings
    deps: AgentDeps
    graph: AgentGraph
    stateless: AgentGraph
    kit: TurnKit
    metrics: Metrics
    """The kit's instruments (`agent_turns_total`)."""

    async def snapshot(self, thread: ThreadRef) -> StateSnapshot:
        """The thread's latest checkpoint."""
        return await self.graph.aget_state(thread_config(thread))

    async def messages(self, thread: ThreadRef) -> list[BaseMessage]:
        """The thread's messages at its latest checkpoint."""
        messages: list[BaseMessage] = (await self.snapshot(thread)).values.get("messages", [])
        return messages

    async def checkpoints(self, thread: ThreadRef) -> list[StateSnapshot]:
        """Every checkpoint of the thread, newest first (all branches)."""
        return [s async for s in self.graph.aget_state_history(thread_config(thread))]

    def turns(self, outcome: str, door: str = service.DOOR) -> float:
        """How many turns of `door` ended with `outcome` (`agent_turns_total`)."""
        labels = {"door": door, "outcome": outcome}
        return self.metrics.registry.get_sample_value("agent_turns_total", labels) or 0.0

    def request_for(
        self,
        thread: ThreadRef | None,
        *messages: Any,
        retry: bool = False,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> TurnRequest:
        """One request's turn, as `/v1/chat/completions` asks for it (validated, admitted)."""
        body = request(*messages, **extra)
        service.validate(body)
        self.kit.providers.resolve(body.model)
        return service.turn_request(
            body, CALLER, thread, retry=retry, idempotency_key=idempotency_key
        )

    async def admit(self, *messages: Any, **extra: Any) -> None:
        """The kit's admission of one request, as the door asks for it (before any work)."""
        body = request(*messages, **extra)
        await self.kit.admit(http_request(), CALLER, door=service.DOOR, messages=len(body.messages))

    @asynccontextmanager
    async def open(
        self,
        thread: ThreadRef | None,
        *messages: Any,
        retry: bool = False,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> AsyncIterator[Turn]:
        """One request's turn, admitted and opened as `/v1/chat/completions` opens it."""
        await self.admit(*messages, **extra)
        turn = self.request_for(
            thread, *messages, retry=retry, idempotency_key=idempotency_key, **extra
        )
        async with self.kit.open(turn) as opened:
            yield opened

    async def turn(
        self,
        thread: ThreadRef | None,
        *messages: Any,
        retry: bool = False,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Open and complete one request's turn, as `/v1/chat/completions` does; its output."""
        async with self.open(
            thread, *messages, retry=retry, idempotency_key=idempotency_key, **extra
        ) as opened:
            result = await opened.complete()
        return result.output

    async def stream(
        self,
        thread: ThreadRef | None,
        *messages: Any,
        retry: bool = False,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> list[StreamEvent]:
        """Open and stream one request's turn to its end, as the streaming door does; its events."""
        async with self.open(
            thread, *messages, retry=retry, idempotency_key=idempotency_key, **extra
        ) as opened:
            return [event async for event in opened.stream()]


CALLER = Caller(ANONYMOUS)
"""The caller of an open service."""


MakeChat = Callable[..., Chat]
"""The `make_chat` fixture: a `Chat` with these settings overrides."""


def build_chat(settings: Settings) -> Chat:
    """A `Chat` over these settings, checkpointed in memory."""
    deps = build_agent_deps(settings, cooldowns=cooldown_store(settings, None))
    graph = build_graph(lambda: deps, checkpointer=InMemorySaver())
    stateless = build_graph(lambda: deps)
    assert isinstance(graph.checkpointer, BaseCheckpointSaver)
    metrics = Metrics()
    kit = turn_kit(
        settings, deps, graph, stateless, checkpointer=graph.checkpointer, metrics=metrics
    )
    return Chat(settings, deps, graph, stateless, kit, metrics)


def turn_kit(
    settings: Settings,
    deps: AgentDeps,
    graph: AgentGraph,
    stateless: AgentGraph,
    *,
    checkpointer: BaseCheckpointSaver[Any],
    metrics: Metrics | None = None,
    latest_checkpoint: LatestCheckpoint | None = None,
    **extra: Any,
) -> TurnKit:
    """A turn kit over these graphs, with in-process locks and the settings' rate limiter."""
    return TurnKit(
        settings=settings,
        graph=graph,
        stateless_graph=stateless,
        checkpointer=checkpointer,
        locks=extra.pop("locks", None) or ThreadLocks(),
        limiter=extra.pop("limiter", None) or RateLimiter(settings),
        providers=deps.providers,
        count=(metrics or Metrics()).count_turn,
        images=deps.images,
        latest_checkpoint=latest_checkpoint,
        **extra,
    )


def http_request(path: str = "/v1/chat/completions") -> Request:
    """A bare HTTP request from 127.0.0.1 (what the kit's admission reads of it)."""
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [],
            "query_string": b"",
            "client": ("127.0.0.1", 50000),
        }
    )


def thread_config(thread: ThreadRef) -> RunnableConfig:
    """The run config naming a thread."""
    return {"configurable": {"thread_id": thread.stored_id}}


def request(*messages: tuple[str, str] | dict[str, Any], **extra: Any) -> ChatCompletionRequest:
    """A parsed chat request from `(role, content)` pairs or whole message dicts."""
    wire = [m if isinstance(m, dict) else {"role": m[0], "content": m[1]} for m in messages]
    return ChatCompletionRequest.model_validate(
        {"model": extra.pop("model", "offline"), "messages": wire, **extra}
    )


def assistant_calls(text: str | None, *calls: dict[str, Any]) -> dict[str, Any]:
    """The assistant message a client sends back for tool calls it got (`tool_calls` wire)."""
    return {"role": "assistant", "content": text, "tool_calls": list(calls)}
