"""Thread ids as stored: a client's id namespaced by the API key that sent it.

Two keys that pick the same thread id (say "default") must never read or continue each
other's conversation, so every door stores a thread under `<key_id>:<thread_id>`. An open
service (no keys configured) has a single anonymous caller, whose ids are stored as sent,
so `langgraph dev`, scripts and the checkpointer's own tools see the same ids as the client.
"""

from __future__ import annotations

from server.auth import ANONYMOUS

__all__ = ["scoped_thread_id", "unscoped_thread_id"]


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
