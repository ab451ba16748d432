"""What the service refuses, in no door's words: a code and a message, never a status.

Every refusal of the turn kit (a limit, a busy or unknown thread, a malformed thread id,
input that cannot be run, a store that is away) and of the key check (`server.auth`) is a
`Refused` carrying its `ErrorCode`. The door shows it in its own shape (an OpenAI error
object, a JSON-RPC tool error, ...); `server.errors` is the one place that picks its HTTP
status (`server.errors.status_of`), so two doors never disagree on one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

import psycopg

from graph.errors import ErrorCode
from server.store_errors import store_unavailable

__all__ = [
    "STORE_RETRY_AFTER",
    "STORE_UNAVAILABLE_MESSAGE",
    "ClientGone",
    "Refused",
    "checkpoint_not_found",
    "invalid_request",
    "outcome_of",
    "store_away",
    "store_call",
    "store_calls",
    "store_refusal",
    "thread_busy",
    "thread_not_found",
]


class Refused(Exception):  # noqa: N818 - a refusal, raised to the door
    """The service will not run (or read) this request: why, as a code the client can act on.

    Attributes:
        code: The machine-readable reason (`graph.errors.ErrorCode`).
        message: What the client is told.
        param: The request field at fault, as the door's wire names it (if one is).
        headers: Advice for the client that goes with any shape (`Retry-After`,
            `x-ratelimit-*`, `x-should-retry`).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}


class ClientGone(Exception):  # noqa: N818 - a condition, not a failure
    """The client disconnected before its answer was ready; the work was cancelled."""


def thread_busy() -> Refused:
    """Another run holds the thread (one run per thread, on every replica)."""
    return Refused(
        ErrorCode.THREAD_BUSY,
        "Another request is already running on this thread; retry when it has finished.",
        headers={"retry-after": "1"},
    )


def thread_not_found(thread_id: str, *, param: str = "thread_id") -> Refused:
    """No thread of the caller's has this id (every door's words for it)."""
    return Refused(
        ErrorCode.THREAD_NOT_FOUND, f"No thread found with id '{thread_id}'.", param=param
    )


def checkpoint_not_found(thread_id: str, *, param: str = "checkpoint_id") -> Refused:
    """The thread is stored, without the checkpoint the request names."""
    return Refused(
        ErrorCode.CHECKPOINT_NOT_FOUND,
        f"No checkpoint with that id in thread '{thread_id}'.",
        param=param,
    )


def invalid_request(message: str, *, param: str | None = "messages") -> Refused:
    """Input the graph cannot run as sent."""
    return Refused(ErrorCode.INVALID_REQUEST, message, param=param)


STORE_UNAVAILABLE_MESSAGE = (
    "The conversation store (PostgreSQL) is not reachable right now; retry shortly."
)
STORE_RETRY_AFTER = "2"


def store_away() -> Refused:
    """The conversation store cannot be reached right now (PostgreSQL down or failing over)."""
    return Refused(
        ErrorCode.CHECKPOINTER_UNAVAILABLE,
        STORE_UNAVAILABLE_MESSAGE,
        headers={"retry-after": STORE_RETRY_AFTER},
    )


T = TypeVar("T")


async def store_call(work: Awaitable[T]) -> T:
    """`work`, with a store that cannot be reached made a refusal (503 on HTTP doors)."""
    try:
        return await work
    except psycopg.OperationalError as error:
        if not store_unavailable(error):
            raise
        raise store_away() from error


@asynccontextmanager
async def store_calls() -> AsyncIterator[None]:
    """`store_call` for a block of calls: a store that cannot be reached is a refusal."""
    try:
        yield
    except psycopg.OperationalError as error:
        raise store_refusal(error) from error


def store_refusal(error: psycopg.OperationalError) -> Exception:
    """A store that cannot be reached is a refusal; any other database error stays itself."""
    return store_away() if store_unavailable(error) else error


def outcome_of(error: BaseException) -> str:
    """How a turn that raised `error` ended: `cancelled` (the client left) or `error`."""
    cancelled = isinstance(error, asyncio.CancelledError | GeneratorExit)
    return "cancelled" if cancelled else "error"
