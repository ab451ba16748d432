"""The `chat` tool: one turn of the agent on a thread it remembers.

`chat(message, thread_id=None, model=None)` sends only the new message (the thread keeps the
rest) and runs the graph with memory, as `/v1` does with `X-Thread-Id`: the same run kit
(`server.turns.prepare`, `server.turns.run`), the same per-key thread namespace (so the thread
continues from `/v1` with `X-Thread-Id` and the same key), the same lock (one run per thread),
budget
and rate limit. Without a `thread_id` the turn starts a new thread; the result names it, so
the client's model can pass it back on the next call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from langchain_core.messages import HumanMessage
from mcp import types
from starlette.requests import Request

from graph.errors import ErrorCode
from server.auth import Caller
from server.deps import check_budget, rate_limit
from server.errors import STORE_UNAVAILABLE_MESSAGE
from server.mcp_server.results import REFUSALS, refusal, structured, tool_error
from server.state import AppState
from server.store_errors import store_unavailable
from server.turns import run as turn
from server.turns.events import final_text
from server.turns.prepare import prepare_run, run_context
from server.turns.reconcile import stamp_client_messages
from server.turns.threads import ThreadRef, thread_of

__all__ = ["CHAT_TOOL", "ChatArguments", "chat"]

CHAT = "chat"

CHAT_TOOL = types.Tool(
    name=CHAT,
    title="Chat with the agent",
    description=(
        "Send one message to the agent and get its answer. The agent remembers the "
        "conversation: the result names its thread_id; pass that thread_id with the next "
        "message to continue the same conversation (omit it to start a new one). The agent "
        "may use its own tools (calculator, clock, web search, ...) to answer."
    ),
    inputSchema={
        "type": "object",
        "properties": {
            "message": {"type": "string", "minLength": 1, "description": "What to say."},
            "thread_id": {
                "type": "string",
                "description": "The conversation to continue (from an earlier result); "
                "omit it to start a new one.",
            },
            "model": {
                "type": "string",
                "description": "A model alias of the service (GET /v1/models); omit it for "
                "the default.",
            },
        },
        "required": ["message"],
        "additionalProperties": False,
    },
    outputSchema={
        "type": "object",
        "properties": {
            "answer": {"type": "string", "description": "The agent's answer."},
            "thread_id": {
                "type": "string",
                "description": "The conversation's id: pass it to continue it.",
            },
            "model": {"type": "string", "description": "The model alias that ran the turn."},
            "provider": {
                "type": ["string", "null"],
                "description": "The provider endpoint that answered.",
            },
        },
        "required": ["answer", "thread_id", "model"],
    },
    annotations=types.ToolAnnotations(
        title="Chat with the agent", readOnlyHint=False, destructiveHint=False
    ),
)
"""How `chat` is listed: its arguments, and the structured result it answers with."""


@dataclass(frozen=True)
class ChatArguments:
    """The arguments of one `chat` call (already checked against `CHAT_TOOL.inputSchema`)."""

    message: str
    thread_id: str | None = None
    model: str | None = None

    @classmethod
    def parse(cls, arguments: dict[str, Any]) -> ChatArguments:
        """The arguments, an empty optional one read as absent."""

        def optional(name: str) -> str | None:
            value = arguments.get(name)
            return value.strip() or None if isinstance(value, str) else None

        return cls(str(arguments["message"]), optional("thread_id"), optional("model"))


def _thread(caller: Caller, thread_id: str | None) -> ThreadRef:
    """The thread the call names, or a new one; only the new message is sent (`delta`).

    Raises:
        OpenAIHTTPError: 400 `invalid_thread_id` for an id that `server.turns.threads` refuses.
    """
    named = thread_of(
        caller.key_id, {}, configured=thread_id or uuid.uuid4().hex, configured_as="thread_id"
    )
    assert named is not None  # a door's own field is always taken (a delta)  # nosec B101
    return named


async def chat(
    state: AppState, request: Request, caller: Caller, arguments: ChatArguments
) -> types.CallToolResult:
    """Run one turn on the thread; what the service refuses is a tool error, not a crash.

    Args:
        state: The app's resources.
        request: The HTTP request that carries the call (on an open service the rate
            limit counts its client's address).
        caller: The authenticated caller: the thread's namespace and the usage's key.
        arguments: The call's arguments.
    """
    try:
        await check_budget(state, caller)
        await rate_limit(request, caller, state)
        model = arguments.model
        aliases = state.deps.providers
        aliases.resolve(model)  # an unknown alias is refused before anything is stored
        thread = _thread(caller, arguments.thread_id)
        context = run_context(state.settings, caller=caller.key_id, model=model)
        messages = stamp_client_messages([HumanMessage(arguments.message)])
        async with state.locks.hold(thread.stored_id):
            run = await prepare_run(
                state.graph,
                messages,
                thread,
                context,
                durability=state.settings.checkpoint_durability,
                images=state.deps.images,
            )
            output = await turn.complete(run)
    except REFUSALS as error:
        return refusal(error)
    except psycopg.OperationalError as error:
        if not store_unavailable(error):
            raise
        return tool_error(STORE_UNAVAILABLE_MESSAGE, ErrorCode.CHECKPOINTER_UNAVAILABLE)
    return structured(
        {
            "answer": final_text(output),
            "thread_id": thread.client_id,
            "model": model or aliases.default_alias,
            "provider": output.get("provider"),
        }
    )
