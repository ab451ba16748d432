"""What `/agent` admits before a run: the limits every door applies, checked once a request.

LangServe parses the body, then calls the routes' config modifier (once, or once per input
of a batch that sends a list of configs), and only then validates the inputs into message
objects. The modifier is the first code of the door that sees both the caller and the body,
so the request is admitted there, before any message is built, in the other doors' order:

- a batch of more than MAX_BATCH_INPUTS inputs: 400 `too_many_inputs`;
- the turn kit's admission (`server.turns.kit.TurnKit.admit`): the rate limit (each input of
  a batch is one request), the monthly budget, more than MAX_MESSAGES messages (a batch's
  inputs together).

A streaming route (`stream`, `stream_log`, `stream_events`) also takes the thread's lock
before LangServe starts its response (`thread_lease`), so a busy thread is a 409, as on the
other doors, instead of a stream that starts and is cut.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from graph.errors import ErrorCode
from server.auth import Caller
from server.errors import OpenAIHTTPError
from server.turns.kit import TurnKit
from server.turns.lease import ThreadLease

__all__ = ["DOOR", "STREAMING_ROUTES", "admit", "lease_of", "thread_lease"]

STREAMING_ROUTES = ("/stream", "/stream_log", "/stream_events")
"""The run routes whose response starts before the run does."""

_ADMITTED = "agent_admitted"
_LEASE = "agent_lease"


def _inputs(body: Any, *, batch: bool) -> list[Any]:
    """The request's inputs as sent (LangServe has checked their container's shape)."""
    if not isinstance(body, dict):
        return []
    if batch:
        inputs = body.get("inputs")
        return inputs if isinstance(inputs, list) else []
    return [body.get("input")]


def _message_count(value: Any) -> int:
    messages = value.get("messages") if isinstance(value, dict) else None
    return len(messages) if isinstance(messages, list) else 0


DOOR = "agent"
"""The door's name in the turn metrics."""


async def admit(request: Request, kit: TurnKit, caller: Caller) -> None:
    """Admit the request once (see the module docstring); later calls do nothing.

    Raises:
        OpenAIHTTPError: 400 `too_many_inputs` or `too_many_messages`; 429
            `rate_limit_exceeded` (with `Retry-After`) or `insufficient_quota`.
    """
    if getattr(request.state, _ADMITTED, False):
        return
    setattr(request.state, _ADMITTED, True)
    batch = request.url.path.endswith("/batch")
    # Parsed already: LangServe read the body before it called the config modifier.
    inputs = _inputs(await request.json(), batch=batch)
    limit = kit.settings.max_batch_inputs
    if len(inputs) > limit:
        raise OpenAIHTTPError(
            400,
            f"Too many inputs: a batch takes at most {limit} (MAX_BATCH_INPUTS); "
            f"this one has {len(inputs)}.",
            code=ErrorCode.TOO_MANY_INPUTS,
            param="inputs",
        )
    await kit.admit(
        request,
        caller,
        door=DOOR,
        messages=sum(_message_count(value) for value in inputs),
        param="inputs" if batch else "input.messages",
        inputs=len(inputs),
    )


async def thread_lease(request: Request) -> AsyncIterator[ThreadLease]:
    """A streaming route's lease on its thread's lock (a dependency), released at the end.

    The config modifier takes the lock into it (`lease_of`) once it knows the thread; the
    run releases it when it has finished, and the request when it ends, however it ends.
    """
    lease = ThreadLease()
    setattr(request.state, _LEASE, lease)
    try:
        yield lease
    finally:
        await lease.release()


def lease_of(request: Request) -> ThreadLease | None:
    """The lease of a streaming route's request (`thread_lease`); None on other routes."""
    lease = getattr(request.state, _LEASE, None)
    return lease if isinstance(lease, ThreadLease) else None
