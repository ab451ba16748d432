"""Which thread a request names, for every door: one extractor, bounded, key-scoped.

The thread id comes from, first match wins: the door's own field (`configurable.thread_id`
on `/agent`), the `X-Thread-Id` header, Open WebUI's `X-OpenWebUI-Chat-Id` header, then
`metadata.thread_id` of the body. None of them means a stateless run that stores nothing.

Two keys that pick the same thread id (say "default") must never read or continue each
other's conversation, so every door stores a thread under `<key_id>:<thread_id>`. An open
service (no keys configured) has a single anonymous caller, whose ids are stored as sent,
so `langgraph dev`, scripts and the checkpointer's own tools see the same ids as the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graph.errors import ErrorCode
from server.auth import ANONYMOUS
from server.errors import OpenAIHTTPError

__all__ = [
    "MAX_THREAD_ID_LENGTH",
    "OPENWEBUI_CHAT_HEADER",
    "THREAD_HEADER",
    "ThreadRef",
    "header_thread_id",
    "scoped_thread_id",
    "thread_of",
    "unscoped_thread_id",
]

THREAD_HEADER = "x-thread-id"
OPENWEBUI_CHAT_HEADER = "x-openwebui-chat-id"
MAX_THREAD_ID_LENGTH = 256
"""Longer ids are refused: a thread id becomes an index key of the checkpointer."""

_HEADERS = ((THREAD_HEADER, "X-Thread-Id"), (OPENWEBUI_CHAT_HEADER, "X-OpenWebUI-Chat-Id"))


@dataclass(frozen=True)
class ThreadRef:
    """The thread a request continues: as the client named it, and as it is stored.

    Attributes:
        delta: The client may send only new messages (see `server.reconcile.plan`): it
            named the thread explicitly (`X-Thread-Id`, or a door's own field).
    """

    client_id: str
    stored_id: str
    delta: bool = False


def scoped_thread_id(key_id: str, thread_id: str) -> str:
    """The id under which a caller's thread is checkpointed.

    Args:
        key_id: `Caller.key_id` of the authenticated caller (`"anonymous"` when open).
        thread_id: The thread id the client sent.

    Returns:
        `thread_id` itself for the anonymous caller, else `"<key_id>:<thread_id>"`.
    """
    if key_id == ANONYMOUS:
        return thread_id
    return f"{key_id}:{thread_id}"


def unscoped_thread_id(key_id: str, stored_id: str) -> str:
    """The client's view of a stored thread id (the inverse of `scoped_thread_id`)."""
    prefix = f"{key_id}:"
    if key_id != ANONYMOUS and stored_id.startswith(prefix):
        return stored_id[len(prefix) :]
    return stored_id


def header_thread_id(headers: Mapping[str, str]) -> str | None:
    """The thread id the headers name, unchecked (for logs, which never refuse)."""
    return next((headers[name] for name, _ in _HEADERS if headers.get(name)), None)


def _named(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def thread_of(
    key_id: str,
    headers: Mapping[str, str],
    *,
    configured: Any = None,
    metadata: Mapping[str, Any] | None = None,
    configured_as: str = "configurable.thread_id",
) -> ThreadRef | None:
    """The thread a request names (see the module docstring), scoped to its caller's key.

    Args:
        key_id: The caller's `Caller.key_id`.
        headers: The request's headers.
        configured: The door's own thread field, if it has one (`/agent`'s config).
        metadata: The body's `metadata` (`/v1`).
        configured_as: How the error message names `configured`.

    Raises:
        OpenAIHTTPError: 400 `invalid_thread_id` for an id over `MAX_THREAD_ID_LENGTH`.
    """
    candidates: list[tuple[str | None, str, bool]] = [(_named(configured), configured_as, True)]
    for name, label in _HEADERS:
        candidates.append((headers.get(name) or None, label, name == THREAD_HEADER))
    candidates.append(((metadata or {}).get("thread_id") or None, "metadata.thread_id", False))
    for value, where, delta in candidates:
        if not value:
            continue
        if len(value) > MAX_THREAD_ID_LENGTH:
            raise OpenAIHTTPError(
                400,
                f"{where} is longer than {MAX_THREAD_ID_LENGTH} characters.",
                code=ErrorCode.INVALID_THREAD_ID,
                param=where,
            )
        return ThreadRef(value, scoped_thread_id(key_id, value), delta=delta)
    return None
