"""Runs chat completion requests through the graph: the work behind the `/v1` routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langgraph.types import StreamMode

from graph.builder import AgentGraph
from graph.context import Context
from graph.errors import ErrorCode
from graph.prompts import BACKGROUND_TASK_PREFIX
from graph.routing import STREAMED_NODES
from graph.state import Usage
from nodes.images import ImageStore
from nodes.messages import clean_text, content_text, message_text
from nodes.providers.catalogue import ProviderCatalogue
from nodes.providers.reasoning import reasoning_text
from server.errors import OpenAIHTTPError
from server.openai.adapter import to_langchain
from server.openai.events import (
    REASONING_SEPARATOR,
    ProgressDelta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TurnDone,
    final_reasoning,
    final_text,
    pending_tool_calls,
)
from server.openai.progress import progress_lines
from server.openai.protocol import ChatCompletionRequest
from server.runs import PreparedRun, prepare_run, run_context, stateless_run
from server.settings import Settings
from server.threads import ThreadRef

_MODES: list[StreamMode] = ["messages", "values"]
_MODES_WITH_PROGRESS: list[StreamMode] = ["messages", "values", "updates"]


def _usage_minus(usage: Usage | None, before: Usage | None) -> Usage | None:
    if usage is None or before is None:
        return usage
    return Usage(
        input_tokens=usage["input_tokens"] - before["input_tokens"],
        output_tokens=usage["output_tokens"] - before["output_tokens"],
        total_tokens=usage["total_tokens"] - before["total_tokens"],
    )


def _is_background_task(messages: Sequence[BaseMessage]) -> bool:
    users = [m for m in messages if isinstance(m, HumanMessage)]
    return bool(users) and message_text(users[-1]).lstrip().startswith(BACKGROUND_TASK_PREFIX)


class ChatService:
    """Turns one OpenAI request into one graph run (stateful on a thread, or stateless)."""

    def __init__(
        self,
        *,
        graph: AgentGraph,
        stateless_graph: AgentGraph,
        providers: ProviderCatalogue,
        settings: Settings,
        images: ImageStore | None = None,
        caller: str | None = None,
    ) -> None:
        self._caller = caller
        """The API key id the run's usage is counted under (`server.auth.Caller.key_id`)."""
        self._graph = graph
        self._stateless = stateless_graph
        self._providers = providers
        self._settings = settings
        self._images = images

    def context_for(self, request: ChatCompletionRequest) -> Context:
        """Per-run options from the request, with the server's limits."""
        return run_context(
            self._settings,
            caller=self._caller,
            model=request.model,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_output_tokens,
            stop=request.stop_list,
            client_tools=request.tool_specs,
            tool_choice=request.tool_choice,
            parallel_tool_calls=request.parallel_tool_calls,
            response_format=request.response_format,
            openai_params=request.openai_params,
        )

    def validate(self, request: ChatCompletionRequest) -> None:
        """Refuse what the service cannot honour, before any work (400/404)."""
        if request.n is not None and request.n > 1:
            raise OpenAIHTTPError(
                400, "Only n=1 is supported.", code=ErrorCode.UNSUPPORTED_VALUE, param="n"
            )
        if len(request.messages) > self._settings.max_messages:
            raise OpenAIHTTPError(
                400,
                f"Too many messages: at most {self._settings.max_messages} are accepted.",
                code=ErrorCode.TOO_MANY_MESSAGES,
                param="messages",
            )
        self._providers.resolve(request.model)

    async def prepare(
        self,
        request: ChatCompletionRequest,
        thread: ThreadRef | None,
        *,
        retry: bool = False,
        idempotency_key: str | None = None,
    ) -> PreparedRun:
        """Validate the request and pick the graph, input and config of the run.

        Background tasks of chat UIs (`### Task:` prompts) always run statelessly, so the
        thread never sees them. On a thread, the client's history is reconciled with the
        stored one (`server.reconcile`).
        """
        self.validate(request)
        context = self.context_for(request)
        messages = [to_langchain(m) for m in request.messages]
        if thread is None or _is_background_task(messages):
            return stateless_run(self._stateless, messages, context)
        return await prepare_run(
            self._graph,
            messages,
            thread,
            context,
            retry=retry,
            idempotency_key=idempotency_key,
            durability=self._settings.checkpoint_durability,
            images=self._images,
        )

    async def complete(self, run: PreparedRun) -> dict[str, Any]:
        """Run to the end (or to a pause for client tools) and return the graph's output."""
        if run.replay is not None:
            return run.replay
        output = dict(
            await run.graph.ainvoke(
                run.input, run.config, context=run.context, durability=run.durability
            )
        )
        return self._settle(run, output)

    def _settle(self, run: PreparedRun, output: dict[str, Any]) -> dict[str, Any]:
        if run.usage_before is not None:
            output["usage"] = _usage_minus(output.get("usage"), run.usage_before)
        if pending_tool_calls(output):
            output["finish_reason"] = "tool_calls"
        return output

    async def stream(self, run: PreparedRun) -> AsyncGenerator[StreamEvent, None]:
        """Run, yielding reasoning and answer text as the provider produces them, then the output.

        Reasoning is yielded unless SHOW_REASONING is off (the thread keeps it either way).
        """
        show_reasoning = self._settings.show_reasoning
        if run.replay is not None:
            reasoning = final_reasoning(run.replay) if show_reasoning else None
            if reasoning:
                yield ReasoningDelta(reasoning)
            text = final_text(run.replay)
            if text:
                yield TextDelta(text)
            yield TurnDone(run.replay)
            return
        output: dict[str, Any] = {}
        reasoned: str | None = None  # the id of the last message whose reasoning was sent
        modes = _MODES_WITH_PROGRESS if self._settings.progress_events else _MODES
        stream = cast(
            AsyncGenerator[Any, None],
            run.graph.astream(
                run.input,
                run.config,
                context=run.context,
                stream_mode=modes,
                durability=run.durability,
            ),
        )
        # Closed explicitly: a client that leaves must cancel the run and its provider call.
        async with contextlib.aclosing(stream):
            async for part in stream:
                mode, payload = cast(tuple[str, Any], part)
                if mode == "values":
                    output = dict(payload)
                    continue
                if mode == "updates":
                    for line in progress_lines(payload):
                        yield ProgressDelta(line)
                    continue
                message, metadata = payload
                if metadata.get("langgraph_node") not in STREAMED_NODES:
                    continue
                if isinstance(message, AIMessageChunk | AIMessage):
                    reasoning = reasoning_text(message) if show_reasoning else ""
                    if reasoning:
                        if reasoned is not None and reasoned != message.id:
                            reasoning = REASONING_SEPARATOR + reasoning  # a new model call
                        reasoned = message.id
                        yield ReasoningDelta(clean_text(reasoning))
                    text = content_text(message.content)
                    if text:
                        yield TextDelta(text)
        yield TurnDone(self._settle(run, output))
