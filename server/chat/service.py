"""Runs chat completion requests through the graph: the work behind the `/v1` routes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from graph.builder import AgentGraph
from graph.context import Context
from graph.errors import ErrorCode
from graph.prompts import BACKGROUND_TASK_PREFIX
from nodes.images import ImageStore
from nodes.messages import message_text
from nodes.providers.catalogue import ProviderCatalogue
from server.chat.adapter import to_langchain
from server.chat.protocol import ChatCompletionRequest
from server.errors import OpenAIHTTPError
from server.settings import Settings
from server.turns import run as turn
from server.turns.events import StreamEvent
from server.turns.prepare import (
    PreparedRun,
    check_message_count,
    prepare_run,
    run_context,
    stateless_run,
)
from server.turns.threads import ThreadRef


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
        check_message_count(len(request.messages), self._settings)
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
        stored one (`server.turns.reconcile`).
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
        return await turn.complete(run)

    def stream(self, run: PreparedRun) -> AsyncGenerator[StreamEvent, None]:
        """Run, yielding reasoning and answer text as the provider produces them, then the output.

        Reasoning is yielded unless SHOW_REASONING is off (the thread keeps it either way).
        """
        return turn.stream(
            run,
            show_reasoning=self._settings.show_reasoning,
            progress=self._settings.progress_events,
        )
