"""Thread ids are namespaced by API key, so two keys never share a conversation."""

from __future__ import annotations

from server.auth import ANONYMOUS
from server.threads import scoped_thread_id, unscoped_thread_id


def test_an_open_service_stores_the_client_id_as_sent() -> None:
    assert scoped_thread_id(ANONYMOUS, "chat-1") == "chat-1"


def test_a_key_gets_its_own_namespace() -> None:
    assert scoped_thread_id("3f2a9c0d1e2b4a5c", "chat-1") == "3f2a9c0d1e2b4a5c:chat-1"
    assert scoped_thread_id("key-a", "chat-1") != scoped_thread_id("key-b", "chat-1")


def test_unscoping_gives_back_what_the_client_sent() -> None:
    stored = scoped_thread_id("key-a", "chat:with:colons")
    assert unscoped_thread_id("key-a", stored) == "chat:with:colons"
    assert unscoped_thread_id(ANONYMOUS, "chat-1") == "chat-1"
    # Another key's prefix is not stripped: nothing reveals a foreign namespace.
    assert unscoped_thread_id("key-b", stored) == stored
