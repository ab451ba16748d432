"""Translates chat completion requests into turns: the work behind the `/v1` routes."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage

from graph.errors import ErrorCode
from graph.prompts import BACKGROUND_TASK_PREFIX
from nodes.messages import message_text
from server.auth import Caller
from server.chat.adapter import to_langchain
from server.chat.protocol import ChatCompletionRequest
from server.errors import OpenAIHTTPError
from server.turns.request import ClientOptions, TurnRequest
from server.turns.threads import ThreadRef

DOOR = "chat"
"""The door's name in the turn metrics."""


def _is_background_task(messages: Sequence[BaseMessage]) -> bool:
    users = [m for m in messages if isinstance(m, HumanMessage)]
    return bool(users) and message_text(users[-1]).lstrip().startswith(BACKGROUND_TASK_PREFIX)


def validate(request: ChatCompletionRequest) -> None:
    """Refuse what the service cannot honour, before any work (400)."""
    if request.n is not None and request.n > 1:
        raise OpenAIHTTPError(
            400, "Only n=1 is supported.", code=ErrorCode.UNSUPPORTED_VALUE, param="n"
        )


def options_for(request: ChatCompletionRequest) -> ClientOptions:
    """The request's per-run options (the kit bounds them by the server's limits)."""
    return ClientOptions(
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


def turn_request(
    request: ChatCompletionRequest,
    caller: Caller,
    thread: ThreadRef | None,
    *,
    door: str = DOOR,
    retry: bool = False,
    idempotency_key: str | None = None,
) -> TurnRequest:
    """The turn of one chat completion request (stateful on a thread, or stateless).

    Background tasks of chat UIs (`### Task:` prompts) always run statelessly, so the thread
    never sees them. On a thread, the kit reconciles the client's history with the stored
    one (`server.turns.reconcile`).
    """
    messages = [to_langchain(m) for m in request.messages]
    return TurnRequest(
        door=door,
        caller=caller,
        messages=messages,
        thread=None if _is_background_task(messages) else thread,
        options=options_for(request),
        retry=retry,
        idempotency_key=idempotency_key,
        progress=True,
    )
