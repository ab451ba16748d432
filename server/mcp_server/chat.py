"""The `chat` tool: one turn of the agent on a thread it remembers.

`chat(message, thread_id=None, model=None)` sends only the new message (the thread keeps the
rest) and runs the graph with memory, as `/v1` does with `X-Thread-Id`: the same run kit
(`server.turns.kit`), the same per-key thread namespace (so the thread
continues from `/v1` with `X-Thread-Id` and the same key), the same lock (one run per thread),
budget
and rate limit. Without a `thread_id` the turn starts a new thread; the result names it, so
the client's model can pass it back on the next call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from mcp import types
from starlette.requests import Request

from server.auth import Caller
from server.mcp_server.results import REFUSALS, refusal, structured
from server.turns.kit import TurnKit
from server.turns.reconcile import stamp_client_messages
from server.turns.request import TurnRequest
from server.turns.threads import ThreadRef, path_thread

__all__ = ["CHAT_TOOL", "ChatArguments", "chat"]

CHAT = "chat"
DOOR = "mcp"
"""The door's name in the turn metrics."""

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
        Refused: `invalid_thread_id` for an id that `server.turns.threads` refuses.
    """
    return path_thread(caller.key_id, thread_id or uuid.uuid4().hex)


async def chat(
    kit: TurnKit, request: Request, caller: Caller, arguments: ChatArguments
) -> types.CallToolResult:
    """Run one turn on the thread; what the service refuses is a tool error, not a crash.

    Args:
        kit: The turn kit.
        request: The HTTP request that carries the call (on an open service the rate
            limit counts its client's address).
        caller: The authenticated caller: the thread's namespace and the usage's key.
        arguments: The call's arguments.
    """
    model = arguments.model
    try:
        await kit.admit(request, caller, door=DOOR, messages=1, param="message", model=model)
        thread = _thread(caller, arguments.thread_id)
        turn = TurnRequest(
            door=DOOR,
            caller=caller,
            messages=stamp_client_messages([HumanMessage(arguments.message)]),
            thread=thread,
            options={"model": model},
        )
        async with kit.open(turn) as opened:
            result = await opened.complete()
    except REFUSALS as error:
        return refusal(error)
    return structured(
        {
            "answer": result.text,
            "thread_id": thread.client_id,
            "model": model or kit.providers.default_alias,
            "provider": result.provider,
        }
    )
