"""A `RunCreate` translated for the turn kit: which thread, which input, which options.

Nothing here runs anything: `plan_run` checks what can be refused before a run starts (the
assistant, the thread, the input, the kit's admission: rate, budget, MAX_MESSAGES, model),
stamps the thread's record, and returns the `RunPlan` the run executes
(`server.graph_api.run_exec`).

The run's options are the assistant's preset (its `config.configurable` and `context`), then
the run's `config.configurable`, then its `context`: of these, the keys that are the kit's
`ClientOptions` (model, temperature, client_tools, tool_choice, instructions, ...) go to the
run; `configurable.thread_id` is never taken (the path names the thread). A run writes a
checkpoint after every step unless the client asks otherwise (`DURABILITY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Durability, Send
from starlette.requests import Request

from graph.errors import ErrorCode, ModelNotFoundError
from server.auth import Caller
from server.graph_api.assistants import Assistant, resolve_assistant
from server.graph_api.door import DOOR, not_found
from server.graph_api.run_schemas import CommandBody, RunCreate
from server.graph_api.wire import input_messages
from server.refusals import Refused
from server.turns.request import ClientOptions, TurnRequest
from server.turns.rewind import thread_head
from server.turns.threads import ThreadRef
from server.wiring.state import AppState

__all__ = ["RunPlan", "plan_run", "run_options", "to_command"]

OPTION_KEYS = frozenset(ClientOptions.__annotations__)
"""The run options a client may set (`ClientOptions`' keys)."""

CONFIG_KEYS = ("tags", "recursion_limit")
"""The keys of the client's run config passed on to the graph (besides its metadata)."""


@dataclass(frozen=True)
class RunPlan:
    """What a run executes: the kit's turn, and how its stream is shown.

    Attributes:
        turn: The turn, as the kit opens it (`direct`).
        assistant: The assistant it runs.
        modes: The stream modes the client asked (LangGraph's names).
        subgraphs: Stream the subgraphs' events too.
    """

    turn: TurnRequest
    assistant: Assistant
    modes: list[str]
    subgraphs: bool

    @property
    def thread(self) -> ThreadRef | None:
        """The thread it runs on; None: stateless."""
        return self.turn.thread


def run_options(assistant: Assistant, body: RunCreate) -> ClientOptions:
    """The run's `ClientOptions`: the assistant's preset, then the run's (see the docstring)."""
    layers: list[dict[str, Any]] = [
        dict(assistant.config.get("configurable") or {}),
        dict(assistant.context),
        dict((body.config or {}).get("configurable") or {}),
        dict(body.context or {}),
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({key: value for key, value in layer.items() if key in OPTION_KEYS})
    return cast(ClientOptions, merged)


def _send(target: Any) -> Any:
    """A `goto` target: a node's name, or `{node, input}` as a `Send`."""
    if isinstance(target, dict) and "node" in target:
        return Send(str(target["node"]), target.get("input"))
    return target


def to_command(body: CommandBody) -> Command[Any]:
    """LangGraph's `Command` of a request's `command`."""
    goto = body.goto
    if isinstance(goto, list):
        goto = [_send(target) for target in goto]
    elif goto is not None:
        goto = _send(goto)
    update = body.update
    if isinstance(update, list):
        update = [tuple(pair) for pair in update]
    return Command(resume=body.resume, update=update, goto=goto if goto is not None else ())


def _messages(body: RunCreate) -> list[AnyMessage]:
    """The input's messages (an input without `messages` adds none).

    Raises:
        Refused: 400 for an input that is neither null nor an object, or unreadable messages.
    """
    if body.input is None:
        return []
    if not isinstance(body.input, dict):
        raise Refused(
            ErrorCode.INVALID_REQUEST,
            '`input` must be an object of the graph\'s input (`{"messages": [...]}`) or null.',
            param="input",
        )
    return input_messages(body.input.get("messages"))


def _config(body: RunCreate, assistant: Assistant) -> RunnableConfig:
    """The graph's run config: the client's tags and recursion limit, and the run's metadata."""
    client = body.config or {}
    config: dict[str, Any] = {key: client[key] for key in CONFIG_KEYS if key in client}
    config["metadata"] = {
        **(client.get("metadata") or {}),
        **(body.metadata or {}),
        "graph_id": assistant.graph_id,
        "assistant_id": assistant.assistant_id,
    }
    return cast(RunnableConfig, config)


DURABILITY: Durability = "async"
"""A run's durability when the client names none: LangGraph Server's, a checkpoint after every
step, which its clients read (a thread's history, Studio's time travel, `parent_checkpoint`,
a cancelled run's finished steps). The other doors keep CHECKPOINT_DURABILITY."""


def _durability(asked: str | None) -> Durability:
    """The client's durability, when it is one of LangGraph's, else `DURABILITY`."""
    return cast(Durability, asked) if asked in ("sync", "async", "exit") else DURABILITY


async def _require_thread(state: AppState, thread: ThreadRef, body: RunCreate) -> None:
    """A 404 for a thread with neither a record nor checkpoints, unless `if_not_exists=create`."""
    if body.if_not_exists == "create":
        return
    if await state.graph_threads.get(thread.stored_id) is not None:
        return
    if await thread_head(state.turns, thread) is None:
        raise not_found("thread", thread.client_id)


async def plan_run(
    state: AppState,
    request: Request,
    caller: Caller,
    body: RunCreate,
    thread_id: str | None,
) -> RunPlan:
    """Check and translate a run (see the module docstring); the thread's record is stamped.

    Raises:
        Refused: 404 for an unknown assistant or thread (or model); 400 for unreadable
            input; the kit's admission refusals (429, 400 `too_many_messages`).
    """
    kit = state.turns
    assistant = await resolve_assistant(state, caller, body.assistant_id)
    thread = kit.thread(caller, thread_id) if thread_id is not None else None
    if thread is not None:
        thread = ThreadRef(thread.client_id, thread.stored_id, delta=True)
        await _require_thread(state, thread, body)
    messages = _messages(body)
    options = run_options(assistant, body)
    try:
        await kit.admit(
            request,
            caller,
            door=DOOR,
            messages=len(messages),
            param="input.messages",
            model=options.get("model"),
        )
    except ModelNotFoundError as error:
        raise Refused(ErrorCode.MODEL_NOT_FOUND, error.message, param="model") from error
    if thread is not None:
        stamp = {"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id}
        await state.graph_threads.stamp(thread.stored_id, caller.key_id, stamp)
    turn = TurnRequest(
        door=DOOR,
        caller=caller,
        messages=messages,
        thread=thread,
        options=options,
        checkpoint_id=body.start_checkpoint() if thread is not None else None,
        config=_config(body, assistant),
        direct=True,
        command=to_command(body.command) if body.command is not None else None,
        interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after,
        durability=_durability(body.durability),
    )
    return RunPlan(turn, assistant, body.modes(), body.stream_subgraphs)
