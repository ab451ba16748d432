"""What a door asks of the turn kit: `TurnRequest`, the one form every wire is translated into.

A door reads its own wire (OpenAI chat, Responses, MCP, LangServe, ...) and says, here, who
calls (`caller`), what they sent (`messages`, as LangChain messages), on which thread
(`thread`; None: a stateless turn that stores nothing), with which per-run options
(`options`), and how the messages meet the stored thread (`retry`, `idempotency_key`,
`checkpoint_id`, `exact`), or, for a door that speaks LangGraph's own input, that it goes to the
graph as is (`direct`, `command`). Nothing else of the door reaches the kit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import All, Command, Durability

from graph.context import Context
from server.auth import Caller
from server.settings import Settings
from server.turns.threads import ThreadRef

__all__ = ["ClientOptions", "TurnRequest", "run_context"]


class ClientOptions(TypedDict, total=False):
    """The per-run options a client may choose (see `graph.context.Context`)."""

    model: str | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: list[str]
    client_tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None
    parallel_tool_calls: bool | None
    response_format: dict[str, Any] | None
    openai_params: dict[str, Any]
    instructions: str | None
    # The server's limits, which a client may only lower (a LangGraph assistant's context).
    max_tool_rounds: int
    tool_timeout: float
    tool_output_max_chars: int
    max_tools_offered: int
    max_input_chars: int


_LIMITS = (
    "max_tool_rounds",
    "tool_timeout",
    "tool_output_max_chars",
    "max_tools_offered",
    "max_input_chars",
)
"""The `Context` limits the server sets; a client's own value counts only when lower."""


def run_context(
    settings: Settings, *, caller: str | None = None, **client: Unpack[ClientOptions]
) -> Context:
    """A run's options: what the client chose, with the server's limits.

    `caller` is the API key id of the request (`server.auth.Caller.key_id`): its usage is
    counted under it (None: `anonymous`). A limit the client names (`max_input_chars`, ...)
    is taken when it is lower than the server's, else the server's holds.
    """
    options: dict[str, Any] = dict(client)
    for name in _LIMITS:
        server = getattr(settings, name)
        asked = options.get(name)
        valid = isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0
        options[name] = min(server, asked) if valid else server
    return Context(caller=caller, **options)


@dataclass(frozen=True)
class TurnRequest:
    """One turn, as a door asks for it.

    Attributes:
        door: The door's name (`chat`, `responses`, `mcp`, `agent`, ...): the `door` label
            of the turn's metrics.
        caller: Who asks: the thread's namespace, the usage's and the limits' key.
        messages: What the client sent, as LangChain messages: its whole history, or (a
            thread named explicitly, `ThreadRef.delta`) only the new messages.
        thread: The thread the turn continues; None: a stateless turn that stores nothing.
        options: The client's per-run options (model, sampling, tools, ...).
        retry: The client marked the request as a retry of one already answered.
        idempotency_key: The client's key for the request; the same key again is a retry.
        checkpoint_id: Continue from this earlier checkpoint of the thread (a branch).
        exact: The client names the checkpoint it continues and sends only what follows
            it (the Responses API): nothing is reconciled.
        assistant_text: Match the client's assistant messages by their text too (a client
            that resends answers as it rendered them, like the playground, sets False).
        answerable: Refuse a turn whose new messages leave nothing to answer. False for a
            door that can no longer answer with an error once it has started (LangServe's
            streams): the graph answers such a turn itself.
        history: For a stateless turn, stored messages that lead the client's (a Responses
            request with `store: false` continuing a stored response).
        config: The door's own run config (callbacks, tags), passed to the graph.
        wants_checkpoint: Read the checkpoint the turn ended on into the result.
        progress: Stream lines about the graph's steps (PROGRESS_EVENTS, where the door
            shows them).
        direct: The door hands the graph LangGraph's own input (the LangGraph API): the
            messages are appended by the graph's reducer with nothing reconciled, none of
            them required; no messages and no `command` continue from the thread's head, or
            from `checkpoint_id` (a fork, "re-run from here").
        command: With `direct`, a `Command` (`resume`, `update`, `goto`) passed to the graph
            as is, in place of the messages.
        interrupt_before, interrupt_after: With `direct`, the nodes to pause before or after
            (`"*"`: every node), as LangGraph's own breakpoints.
        durability: With `direct`, when the run writes its checkpoints, as the client asks
            (None: CHECKPOINT_DURABILITY).
    """

    door: str
    caller: Caller
    messages: Sequence[AnyMessage]
    thread: ThreadRef | None = None
    options: ClientOptions = field(default_factory=lambda: ClientOptions())
    retry: bool = False
    idempotency_key: str | None = None
    checkpoint_id: str | None = None
    exact: bool = False
    assistant_text: bool = True
    answerable: bool = True
    history: Sequence[AnyMessage] = ()
    config: RunnableConfig | None = None
    wants_checkpoint: bool = False
    progress: bool = False
    direct: bool = False
    command: Command[Any] | None = None
    interrupt_before: All | Sequence[str] | None = None
    interrupt_after: All | Sequence[str] | None = None
    durability: Durability | None = None
