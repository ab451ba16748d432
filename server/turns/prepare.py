"""One run kit for every door: a run's options, and how a request continues its thread.

`run_context` builds the per-run options (the client's, bounded by the server's limits);
`prepare_run` reconciles the messages a client sent with the stored thread
(`server.turns.reconcile.plan`) and picks the graph, input and config of the run. A door converts
its wire format into LangChain messages and a `ThreadRef`, and runs the `PreparedRun`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.types import All, Command, Durability

from graph.builder import AgentGraph
from graph.context import Context
from graph.errors import ErrorCode
from graph.routing import pending_client_calls
from graph.state import InputState, State, Usage
from nodes.images import ImageStore, externalize, names_stored_image
from nodes.messages import content_text
from server.refusals import Refused
from server.turns.reconcile import Plan, plan
from server.turns.threads import ThreadRef


@dataclass(frozen=True)
class PreparedRun:
    """Which graph to run, with what input and config.

    Attributes:
        input: New messages, a `Command` resuming a paused run, or None to finish a run
            that was cut short.
        usage_before: Usage already reported for this turn (a resumed run reports the rest).
        replay: The stored output to answer with instead of running (a retried request).
        durability: When the run writes checkpoints (None: a stateless run writes none).
        interrupt_before, interrupt_after: Breakpoints: the nodes to pause before or after.
    """

    graph: AgentGraph
    input: InputState | Command[Any] | None
    config: RunnableConfig
    context: Context
    usage_before: Usage | None = None
    replay: dict[str, Any] | None = None
    durability: Durability | None = None
    interrupt_before: All | Sequence[str] | None = None
    interrupt_after: All | Sequence[str] | None = None


def stateless_run(
    graph: AgentGraph,
    messages: Sequence[AnyMessage],
    context: Context,
    *,
    config: RunnableConfig | None = None,
    answerable: bool = True,
    checked: Sequence[AnyMessage] | None = None,
) -> PreparedRun:
    """A run that stores nothing: the graph without a checkpointer, on the client's history.

    `config` is the door's own run config (callbacks, tags), passed through; `answerable` as
    in `prepare_run`. `checked`: the messages the client sent, when `messages` also holds
    stored ones that lead them (their images by reference, which the graph resolves); by
    default all of `messages`.
    """
    new = messages if checked is None else checked
    refuse_image_references(new)
    if answerable:
        require_answerable(new)
    return PreparedRun(graph, InputState(messages=list(messages)), config or {}, context)


def thread_config(
    thread: ThreadRef, config: RunnableConfig | None, checkpoint_id: str | None
) -> RunnableConfig:
    """The door's run config (`config`) on the stored thread, at `checkpoint_id` if named."""
    configurable: dict[str, Any] = {"thread_id": thread.stored_id}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    base: dict[str, Any] = dict(config or {})
    return cast(
        RunnableConfig,
        {**base, "configurable": {**(base.get("configurable") or {}), **configurable}},
    )


def refuse_image_references(messages: Sequence[AnyMessage]) -> None:
    """A 400 for a client message that names a stored image (`agent-image:`) itself.

    Raises:
        Refused: 400 `invalid_request`, param `messages`.
    """
    if names_stored_image(messages):
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            "An image must be an http(s) URL or a data: URI; agent-image: references are "
            "the service's own.",
            param="messages",
        )


async def prepare_run(
    graph: AgentGraph,
    messages: Sequence[AnyMessage],
    thread: ThreadRef,
    context: Context,
    *,
    config: RunnableConfig | None = None,
    checkpoint_id: str | None = None,
    retry: bool = False,
    idempotency_key: str | None = None,
    assistant_text: bool = True,
    answerable: bool = True,
    durability: Durability = "exit",
    images: ImageStore | None = None,
    exact: bool = False,
) -> PreparedRun:
    """Reconcile the client's messages with the thread and prepare the run (both doors).

    Args:
        graph: The graph with the checkpointer.
        messages: What the client sent: its whole history, or (`thread.delta`) only the
            new messages.
        thread: The thread, as stored.
        context: The run's options (`run_context`).
        config: The door's own run config (callbacks, tags); the thread is added to it.
        checkpoint_id: Continue from this earlier checkpoint of the thread (a branch).
        retry: The client marked the request as a retry of one already answered.
        idempotency_key: The client's key for the request; the same key again is a retry.
        assistant_text: Match the client's assistant messages by their text too (see
            `server.turns.reconcile.plan`).
        answerable: Refuse (400) a run whose new messages end with nothing to answer. A
            door that cannot answer with an error any more once it has run the request
            (LangServe's streams) leaves it to the graph, which answers such a turn itself.
        durability: When the run writes its checkpoints (CHECKPOINT_DURABILITY).
        images: Where the thread keeps its images: the new messages enter the thread with
            a reference per inline image (`nodes.images.externalize`), saved before the
            run writes a checkpoint. None: they enter as sent.
        exact: The client names the checkpoint it continues (`checkpoint_id`, or a new
            thread) and sends only what follows it, as the Responses API does: nothing is
            reconciled. The messages are appended, or, on a checkpoint paused for client
            tools, must answer its calls first. A named checkpoint that is gone is a 404.

    Raises:
        Refused: 400 when nothing in `messages` is left to answer, or when pending
            client tool calls are answered wrongly; 404 `thread_not_found` (`exact`) when
            the named checkpoint is gone.
    """
    refuse_image_references(messages)
    run_config = thread_config(thread, config, checkpoint_id)
    snapshot = await graph.aget_state(run_config)
    if idempotency_key:
        # The key is kept in the checkpoints of its run: the same key again is a retry.
        last_key = (snapshot.metadata or {}).get("idempotency_key")
        retry = retry or last_key == idempotency_key
        metadata = {**(run_config.get("metadata") or {}), "idempotency_key": idempotency_key}
        run_config = cast(RunnableConfig, {**run_config, "metadata": metadata})
    stored: list[AnyMessage] = list(snapshot.values.get("messages", []))
    interrupted = any(task.interrupts for task in snapshot.tasks)
    if exact and checkpoint_id is not None and snapshot.created_at is None:
        raise Refused(
            ErrorCode.THREAD_NOT_FOUND,
            "The checkpoint this request continues is no longer stored (its thread was deleted).",
        )
    decided = (
        _exact_plan(stored, messages, interrupted=interrupted)
        if exact
        else plan(
            stored,
            messages,
            finished=not snapshot.next,
            interrupted=interrupted,
            retry=retry,
            delta=thread.delta,
            assistant_text=assistant_text,
        )
    )
    new = list(messages[decided.start :])
    if images is not None and decided.action in ("seed", "append", "fork"):
        new = await externalize(new, images)
    usage_before: Usage | None = snapshot.values.get("usage")
    match decided.action:
        case "seed" | "append":
            if answerable:
                require_answerable(new)
            return PreparedRun(
                graph, InputState(messages=new), run_config, context, durability=durability
            )
        case "resume":
            answers = _tool_answers(new, snapshot.values)
            return PreparedRun(
                graph,
                Command(resume=answers),
                run_config,
                context,
                usage_before,
                durability=durability,
            )
        case "continue":
            return PreparedRun(
                graph, None, run_config, context, usage_before, durability=durability
            )
        case "replay":
            return PreparedRun(graph, None, run_config, context, replay=dict(snapshot.values))
        case "fork":
            if answerable:
                require_answerable(new)
            kept = stored[: decided.base_end]
            at = await _fork_base(graph, thread, kept)
            if at is not None:
                branch = {**run_config["configurable"], **at}
                forked = cast(RunnableConfig, {**run_config, "configurable": branch})
                return PreparedRun(
                    graph, InputState(messages=new), forked, context, durability=durability
                )
            # No checkpoint ends exactly there: rewrite the branch's messages instead.
            rewrite: list[Any] = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept, *new]
            return PreparedRun(
                graph, InputState(messages=rewrite), run_config, context, durability=durability
            )


def _exact_plan(
    stored: Sequence[BaseMessage], new: Sequence[BaseMessage], *, interrupted: bool
) -> Plan:
    """What follows a named checkpoint (`prepare_run(exact=True)`): nothing to reconcile.

    Raises:
        Refused: 400 when a checkpoint paused for client tools is not answered
            first, or when tool results answer a checkpoint that waits for none.
    """
    if not stored:
        return Plan("seed")
    answers = bool(new) and isinstance(new[0], ToolMessage)
    if interrupted and not answers:
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            "The conversation waits for the results of its function calls: send them "
            "(function_call_output) first.",
            param="input",
        )
    if answers and not interrupted:
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            "There is no pending function call to answer.",
            param="input",
        )
    return Plan("resume" if interrupted else "append")


async def _fork_base(
    graph: AgentGraph, thread: ThreadRef, kept: Sequence[BaseMessage]
) -> dict[str, Any] | None:
    """The configurable of the finished checkpoint whose messages are exactly `kept`."""
    if not kept:
        return None
    ids = [m.id for m in kept]
    history: RunnableConfig = {"configurable": {"thread_id": thread.stored_id}}
    async for snapshot in graph.aget_state_history(history):
        messages = snapshot.values.get("messages", [])
        if snapshot.next or len(messages) != len(ids):
            continue
        if [m.id for m in messages] == ids:
            return dict(snapshot.config.get("configurable") or {})
    return None


def require_answerable(new: Sequence[BaseMessage]) -> None:
    """A 400 unless the run has a user or tool message to answer last."""
    if not new or not isinstance(new[-1], HumanMessage | ToolMessage):
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            "The last message must be a user or tool message with something new to answer.",
            param="messages",
        )


def _tool_answers(new: Sequence[BaseMessage], values: dict[str, Any]) -> dict[str, str]:
    """The client's tool results for a paused run, checked against what it waits for."""
    answers = {m.tool_call_id: content_text(m.content) for m in new if isinstance(m, ToolMessage)}
    if len(answers) != len(new):
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            "Answer the pending tool calls with tool messages before sending anything else.",
            param="messages",
        )
    _, pending = pending_client_calls(cast(State, values))
    missing = [c.get("id") for c in pending if c.get("id") not in answers]
    if missing:
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            f"Missing tool results for tool_call_id {', '.join(str(m) for m in missing)}.",
            param="messages",
        )
    return answers
