"""Runs chat completion requests through the graph: the work behind the `/v1` routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.types import Command, StreamMode

from graph.builder import AgentGraph
from graph.context import Context
from graph.prompts import BACKGROUND_TASK_PREFIX
from graph.routing import STREAMED_NODES, pending_client_calls
from graph.state import InputState, State, Usage
from nodes.messages import content_text, is_client_message, message_text
from nodes.providers.catalogue import ProviderCatalogue
from server.errors import OpenAIHTTPError
from server.openai.adapter import to_langchain
from server.openai.progress import progress_lines
from server.openai.protocol import ChatCompletionRequest
from server.ops.locks import ThreadLocks
from server.reconcile import plan
from server.settings import Settings

_MODES: list[StreamMode] = ["messages", "values"]
_MODES_WITH_PROGRESS: list[StreamMode] = ["messages", "values", "updates"]


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


@dataclass(frozen=True)
class ProgressDelta:
    """A line about what the graph is doing (route, tool calls, fallbacks); optional."""

    text: str
    kind: Literal["progress"] = "progress"


StreamEvent = TextDelta | ProgressDelta | TurnDone


@dataclass(frozen=True)
class PreparedRun:
    """Which graph to run, with what input and config.

    Attributes:
        input: New messages, a `Command` resuming a paused run, or None to finish a run
            that was cut short.
        usage_before: Usage already reported for this turn (a resumed run reports the rest).
        replay: The stored output to answer with instead of running (a retried request).
    """

    graph: AgentGraph
    input: InputState | Command[Any] | None
    config: RunnableConfig
    context: Context
    usage_before: Usage | None = None
    replay: dict[str, Any] | None = None


def run_messages(output: dict[str, Any]) -> list[AIMessage]:
    """The AI messages this run added: those after the last message the client sent."""
    messages: list[BaseMessage] = output.get("messages", [])
    start = 0
    for index in range(len(messages) - 1, -1, -1):
        if is_client_message(messages[index]):
            start = index + 1
            break
    return [m for m in messages[start:] if isinstance(m, AIMessage)]


def final_text(output: dict[str, Any]) -> str:
    """The answer's text as the client sees it: every AI message of the run, joined."""
    return "".join(content_text(m.content) for m in run_messages(output))


def pending_tool_calls(output: dict[str, Any]) -> list[ToolCall]:
    """The client tool calls a paused run waits for (empty when the run finished)."""
    calls: list[ToolCall] = []
    for pause in output.get("__interrupt__", ()):
        value = getattr(pause, "value", None)
        if isinstance(value, dict):
            calls.extend(value.get("tool_calls", []))
    return calls


@dataclass(frozen=True)
class ThreadRef:
    """The thread a request continues: as the client named it, and as it is stored.

    Attributes:
        delta: The client may send only new messages (see `server.reconcile.plan`).
    """

    client_id: str
    stored_id: str
    delta: bool = False


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
        locks: ThreadLocks | None = None,
    ) -> None:
        self.locks = locks or ThreadLocks()
        """One run per thread at a time (409 for a second)."""
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
            max_input_chars=settings.max_input_chars,
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
                400, "Only n=1 is supported.", code="unsupported_value", param="n"
            )
        if len(request.messages) > self._settings.max_messages:
            raise OpenAIHTTPError(
                400,
                f"Too many messages: at most {self._settings.max_messages} are accepted.",
                code="too_many_messages",
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
            _require_answerable(messages)
            return PreparedRun(self._stateless, InputState(messages=messages), {}, context)
        config: RunnableConfig = {"configurable": {"thread_id": thread.stored_id}}
        snapshot = await self._graph.aget_state(config)
        if idempotency_key:
            # The key is kept in the checkpoints of its run: the same key again is a retry.
            last_key = (snapshot.metadata or {}).get("idempotency_key")
            retry = retry or last_key == idempotency_key
            config = {**config, "metadata": {"idempotency_key": idempotency_key}}
        stored: list[BaseMessage] = list(snapshot.values.get("messages", []))
        interrupted = any(task.interrupts for task in snapshot.tasks)
        decided = plan(
            stored,
            messages,
            finished=not snapshot.next,
            interrupted=interrupted,
            retry=retry,
            delta=thread.delta,
        )
        new = messages[decided.start :]
        usage_before: Usage | None = snapshot.values.get("usage")
        match decided.action:
            case "seed" | "append":
                _require_answerable(new)
                return PreparedRun(self._graph, InputState(messages=new), config, context)
            case "resume":
                answers = _tool_answers(new, snapshot.values)
                return PreparedRun(
                    self._graph, Command(resume=answers), config, context, usage_before
                )
            case "continue":
                return PreparedRun(self._graph, None, config, context, usage_before)
            case "replay":
                return PreparedRun(self._graph, None, config, context, replay=dict(snapshot.values))
            case "fork":
                _require_answerable(new)
                base = await self._fork_base(config, stored[: decided.base_end])
                if base is not None:
                    base = {**base, "metadata": config.get("metadata", {})}
                    return PreparedRun(self._graph, InputState(messages=new), base, context)
                # No checkpoint ends exactly there: rewrite the branch's messages instead.
                rewrite: list[Any] = [
                    RemoveMessage(id=REMOVE_ALL_MESSAGES),
                    *stored[: decided.base_end],
                    *new,
                ]
                return PreparedRun(self._graph, InputState(messages=rewrite), config, context)

    async def _fork_base(
        self, config: RunnableConfig, kept: list[BaseMessage]
    ) -> RunnableConfig | None:
        """The config of the finished checkpoint whose messages are exactly `kept`."""
        if not kept:
            return None
        ids = [m.id for m in kept]
        async for snapshot in self._graph.aget_state_history(config):
            messages = snapshot.values.get("messages", [])
            if snapshot.next or len(messages) != len(ids):
                continue
            if [m.id for m in messages] == ids:
                return snapshot.config
        return None

    async def complete(self, run: PreparedRun) -> dict[str, Any]:
        """Run to the end (or to a pause for client tools) and return the graph's output."""
        if run.replay is not None:
            return run.replay
        output = dict(await run.graph.ainvoke(run.input, run.config, context=run.context))
        return self._settle(run, output)

    def _settle(self, run: PreparedRun, output: dict[str, Any]) -> dict[str, Any]:
        if run.usage_before is not None:
            output["usage"] = _usage_minus(output.get("usage"), run.usage_before)
        if pending_tool_calls(output):
            output["finish_reason"] = "tool_calls"
        return output

    async def stream(self, run: PreparedRun) -> AsyncGenerator[StreamEvent, None]:
        """Run, yielding answer text as the provider produces it, then the output."""
        if run.replay is not None:
            text = final_text(run.replay)
            if text:
                yield TextDelta(text)
            yield TurnDone(run.replay)
            return
        output: dict[str, Any] = {}
        modes = _MODES_WITH_PROGRESS if self._settings.progress_events else _MODES
        stream = cast(
            AsyncGenerator[Any, None],
            run.graph.astream(run.input, run.config, context=run.context, stream_mode=modes),
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
                    text = content_text(message.content)
                    if text:
                        yield TextDelta(text)
        yield TurnDone(self._settle(run, output))


def _require_answerable(new: Sequence[BaseMessage]) -> None:
    if not new or not isinstance(new[-1], HumanMessage | ToolMessage):
        raise OpenAIHTTPError(
            400,
            "The last message must be a user or tool message with something new to answer.",
            code="invalid_request",
            param="messages",
        )


def _tool_answers(new: Sequence[BaseMessage], values: dict[str, Any]) -> dict[str, str]:
    """The client's tool results for a paused run, checked against what it waits for."""
    answers = {m.tool_call_id: content_text(m.content) for m in new if isinstance(m, ToolMessage)}
    if len(answers) != len(new):
        raise OpenAIHTTPError(
            400,
            "Answer the pending tool calls with tool messages before sending anything else.",
            code="invalid_request",
            param="messages",
        )
    _, pending = pending_client_calls(cast(State, values))
    missing = [c.get("id") for c in pending if c.get("id") not in answers]
    if missing:
        raise OpenAIHTTPError(
            400,
            f"Missing tool results for tool_call_id {', '.join(str(m) for m in missing)}.",
            code="invalid_request",
            param="messages",
        )
    return answers
