"""Runs chat completion requests through the graph: the work behind the `/v1` routes."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import StreamMode

from graph.builder import AgentGraph
from graph.context import Context
from graph.routing import FALLBACK_PROVIDER, RESPOND
from graph.state import InputState
from nodes.messages import content_text
from nodes.providers.catalogue import ProviderCatalogue
from server.errors import OpenAIHTTPError
from server.openai_adapter import new_turn, to_langchain
from server.openai_protocol import ChatCompletionRequest
from server.settings import Settings

_STREAMED_NODES = frozenset({FALLBACK_PROVIDER, RESPOND})
_MODES: list[StreamMode] = ["messages", "values"]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text, as produced."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class TurnDone:
    """The end of a run, with the graph's output."""

    output: dict[str, Any]
    kind: Literal["done"] = "done"


StreamEvent = TextDelta | TurnDone


@dataclass(frozen=True)
class PreparedRun:
    """Which graph to run, with what input and config."""

    graph: AgentGraph
    input: InputState
    config: RunnableConfig
    context: Context


def final_text(output: dict[str, Any]) -> str:
    """The text of the last AI message of a run's output."""
    messages: list[BaseMessage] = output.get("messages", [])
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return content_text(message.content)
    return ""


class ChatService:
    """Turns one OpenAI request into one graph run (stateful on a thread, or stateless)."""

    def __init__(
        self,
        *,
        graph: AgentGraph,
        stateless_graph: AgentGraph,
        providers: ProviderCatalogue,
        settings: Settings,
    ) -> None:
        self._graph = graph
        self._stateless = stateless_graph
        self._providers = providers
        self._settings = settings

    def context_for(self, request: ChatCompletionRequest) -> Context:
        """Per-run options from the request, with the server's limits."""
        settings = self._settings
        return Context(
            model=request.model,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_completion_tokens or request.max_tokens,
            stop=request.stop_list,
            max_tool_rounds=settings.max_tool_rounds,
            tool_timeout=settings.tool_timeout,
            tool_output_max_chars=settings.tool_output_max_chars,
            max_tools_offered=settings.max_tools_offered,
        )

    async def prepare(self, request: ChatCompletionRequest, thread_id: str | None) -> PreparedRun:
        """Validate the model and pick the graph, input and config of the run."""
        if request.n is not None and request.n > 1:
            raise OpenAIHTTPError(
                400, "Only n=1 is supported.", code="unsupported_value", param="n"
            )
        self._providers.resolve(request.model)
        context = self.context_for(request)
        if thread_id is None:
            messages = [to_langchain(m) for m in request.messages]
            return PreparedRun(self._stateless, InputState(messages=messages), {}, context)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        snapshot = await self._graph.aget_state(config)
        known = bool(snapshot.values.get("messages"))
        turn = new_turn(request.messages) if known else request.messages
        if not turn:
            raise OpenAIHTTPError(
                400,
                "The last message must be a user or tool message to continue the thread.",
                code="invalid_request",
                param="messages",
            )
        return PreparedRun(
            self._graph, InputState(messages=[to_langchain(m) for m in turn]), config, context
        )

    async def complete(self, run: PreparedRun) -> dict[str, Any]:
        """Run to the end and return the graph's output."""
        output = await run.graph.ainvoke(run.input, run.config, context=run.context)
        return dict(output)

    async def stream(self, run: PreparedRun) -> AsyncGenerator[StreamEvent, None]:
        """Run, yielding answer text as the provider produces it, then the output."""
        output: dict[str, Any] = {}
        stream = run.graph.astream(run.input, run.config, context=run.context, stream_mode=_MODES)
        async for part in stream:
            mode, payload = cast(tuple[str, Any], part)
            if mode == "values":
                output = dict(payload)
                continue
            message, metadata = payload
            if metadata.get("langgraph_node") not in _STREAMED_NODES:
                continue
            if isinstance(message, AIMessageChunk | AIMessage):
                text = content_text(message.content)
                if text:
                    yield TextDelta(text)
        yield TurnDone(output)
