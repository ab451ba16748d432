"""Which thread a request names, and its id namespaced by API key (two keys never share one)."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth import ANONYMOUS
from server.errors import OpenAIHTTPError
from server.threads import (
    MAX_THREAD_ID_LENGTH,
    OPENWEBUI_CHAT_HEADER,
    THREAD_HEADER,
    ThreadRef,
    header_thread_id,
    scoped_thread_id,
    thread_of,
    unscoped_thread_id,
)


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


# --- thread_of: which thread a request names --------------------------------------------------


def test_no_thread_named_is_a_stateless_request() -> None:
    assert thread_of(ANONYMOUS, {}) is None
    assert thread_of(ANONYMOUS, {"x-thread-id": ""}, configured="  ", metadata={}) is None


def test_the_door_s_field_then_the_headers_then_metadata_first_match_wins() -> None:
    headers = {THREAD_HEADER: "from-header", OPENWEBUI_CHAT_HEADER: "from-webui"}
    metadata = {"thread_id": "from-metadata"}

    def named(**kwargs: Any) -> str | None:
        thread = thread_of(ANONYMOUS, **kwargs)
        return thread.client_id if thread else None

    assert named(headers=headers, configured="from-door", metadata=metadata) == "from-door"
    assert named(headers=headers, metadata=metadata) == "from-header"
    assert named(headers={OPENWEBUI_CHAT_HEADER: "from-webui"}, metadata=metadata) == "from-webui"
    assert named(headers={}, metadata=metadata) == "from-metadata"


def test_only_an_explicitly_named_thread_may_be_sent_as_new_messages_only() -> None:
    def delta(**kwargs: Any) -> bool:
        thread = thread_of(ANONYMOUS, **kwargs)
        assert thread is not None
        return thread.delta

    assert delta(headers={}, configured="t")
    assert delta(headers={THREAD_HEADER: "t"})
    assert not delta(headers={OPENWEBUI_CHAT_HEADER: "t"})  # Open WebUI resends everything
    assert not delta(headers={}, metadata={"thread_id": "t"})


def test_the_thread_is_scoped_to_the_caller_s_key() -> None:
    thread = thread_of("key-a", {THREAD_HEADER: "chat-1"})
    assert thread == ThreadRef("chat-1", "key-a:chat-1", delta=True)
    configured = thread_of("key-a", {}, configured=" chat-2 ")
    assert configured is not None
    assert (configured.client_id, configured.stored_id) == ("chat-2", "key-a:chat-2")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"headers": {THREAD_HEADER: "x" * 257}}, "X-Thread-Id"),
        ({"headers": {OPENWEBUI_CHAT_HEADER: "x" * 257}}, "X-OpenWebUI-Chat-Id"),
        ({"headers": {}, "metadata": {"thread_id": "x" * 257}}, "metadata.thread_id"),
        ({"headers": {}, "configured": "x" * 257, "configured_as": "cfg.thread"}, "cfg.thread"),
    ],
)
def test_an_id_too_long_to_index_is_a_400_naming_where_it_came_from(
    kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(OpenAIHTTPError) as caught:
        thread_of(ANONYMOUS, **kwargs)
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400,
        "invalid_thread_id",
        param,
    )
    assert str(MAX_THREAD_ID_LENGTH) in caught.value.message
    assert thread_of(ANONYMOUS, {THREAD_HEADER: "x" * MAX_THREAD_ID_LENGTH}) is not None


def test_the_headers_name_a_thread_for_the_logs_without_checks() -> None:
    assert header_thread_id({OPENWEBUI_CHAT_HEADER: "w", THREAD_HEADER: "t"}) == "t"
    assert header_thread_id({OPENWEBUI_CHAT_HEADER: "x" * 300}) == "x" * 300
    assert header_thread_id({}) is None
