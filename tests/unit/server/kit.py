"""The `/v1` core without a server: the real graph on the offline model, in memory, through
the turn kit as the door uses it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import StateSnapshot

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
from server.turns.kit import TurnKit
from server.turns.threads import ThreadRef
from server.wiring.services import build_agent_deps


@dataclass
class Chat:
    """The turn kit over the checkpointed and the stateless graph, and ways to look inside."""

    settings: Settings
    deps: AgentDeps
    graph: AgentGraph
    stateless: AgentGraph
    kit: TurnKit

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

    async def turn(
        self,
        thread: ThreadRef | None,
        *messages: Any,
        retry: bool = False,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Open and complete one request's turn, as `/v1/chat/completions` does; its output."""
        body = request(*messages, **extra)
        service.validate(body)
        turn = service.turn_request(
            body, CALLER, thread, retry=retry, idempotency_key=idempotency_key
        )
        async with self.kit.open(turn) as opened:
            result = await opened.complete()
        return result.output


CALLER = Caller(ANONYMOUS)
"""The caller of an open service."""


MakeChat = Callable[..., Chat]
"""The `make_chat` fixture: a `Chat` with these settings overrides."""


def build_chat(settings: Settings) -> Chat:
    """A `Chat` over these settings, checkpointed in memory."""
    deps = build_agent_deps(settings, cooldowns=cooldown_store(settings, None))
    graph = build_graph(lambda: deps, checkpointer=InMemorySaver())
    stateless = build_graph(lambda: deps)
    kit = TurnKit(
        settings=settings,
        graph=graph,
        stateless_graph=stateless,
        checkpointer=graph.checkpointer,
        locks=ThreadLocks(),
        limiter=RateLimiter(settings),
        providers=deps.providers,
        count=Metrics().count_turn,
        images=deps.images,
    )
    return Chat(settings, deps, graph, stateless, kit)


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
