"""Which thread a request names, and its id namespaced by API key (two keys never share one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.auth import ANONYMOUS
from server.errors import status_of
from server.refusals import Refused
from server.turns.threads import (
    MAX_THREAD_ID_LENGTH,
    OPENWEBUI_CHAT_HEADER,
    THREAD_HEADER,
    ThreadRef,
    checked_thread_id,
    header_thread_id,
    scoped_thread_id,
    thread_header_value,
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
    with pytest.raises(Refused) as caught:
        thread_of(ANONYMOUS, **kwargs)
    assert (status_of(caught.value), caught.value.code, caught.value.param) == (
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


# --- what a thread id may be, and how a header carries it -------------------------------------


VALID_IDS = [
    "chat-1",
    "日本語",
    "🙂",
    "👨\u200d👩\u200d👧",  # an emoji sequence, joined by zero-width joiners
    "می\u200cخواهم",  # noqa: RUF001  (Persian, with a zero-width non-joiner)
    "naïve café",
    "a%b",
    "x" * MAX_THREAD_ID_LENGTH,
]


@pytest.mark.parametrize("thread_id", VALID_IDS)
def test_printable_unicode_is_a_thread_id(thread_id: str) -> None:
    assert checked_thread_id(thread_id, "metadata.thread_id") == thread_id
    assert checked_thread_id(f"  {thread_id}\n", "metadata.thread_id") == thread_id


@pytest.mark.parametrize(
    ("thread_id", "character"),
    [
        ("a\u202eb", "U+202E"),  # right-to-left override
        ("a\u2066b", "U+2066"),  # left-to-right isolate
        ("a\u200fb", "U+200F"),  # right-to-left mark
        ("\ufeffa", "U+FEFF"),  # byte order mark
        ("a\nb", "U+000A"),
        ("a\rb", "U+000D"),
        ("a\x00b", "U+0000"),
        ("a\tb", "U+0009"),
        ("a\x85b", "U+0085"),  # next line (C1)
        ("a\u2028b", "U+2028"),  # line separator
        ("a\u00a0b", "U+00A0"),  # no-break space
        ("a\ud800b", "U+D800"),  # lone surrogate
        ("a\ue000b", "U+E000"),  # private use
        ("a\U000e0041b", "U+E0041"),  # tag character
    ],
)
def test_control_format_and_other_space_characters_are_refused(
    thread_id: str, character: str
) -> None:
    with pytest.raises(Refused) as caught:
        checked_thread_id(thread_id, "metadata.thread_id")
    assert (status_of(caught.value), caught.value.code, caught.value.param) == (
        400,
        "invalid_thread_id",
        "metadata.thread_id",
    )
    assert character in caught.value.message


def test_a_header_carries_the_id_percent_encoded_or_as_raw_utf8() -> None:
    def named(value: str) -> str | None:
        thread = thread_of(ANONYMOUS, {THREAD_HEADER: value})
        return thread.client_id if thread else None

    assert named("%E6%97%A5%E6%9C%AC%E8%AA%9E") == "日本語"
    assert named("日本語".encode().decode("latin-1")) == "日本語"  # as the ASGI server decodes
    assert named("a b") == "a b"
    assert named("a%25b") == "a%b"
    for bad in ("a%0Ab", "%FF", "caf\xe9", "%E2%80%AE"):
        with pytest.raises(Refused) as caught:
            named(bad)
        assert (caught.value.code, caught.value.param) == ("invalid_thread_id", "X-Thread-Id")


def test_only_the_source_that_names_the_thread_is_checked() -> None:
    headers = {OPENWEBUI_CHAT_HEADER: "%FF", THREAD_HEADER: "t"}
    thread = thread_of(ANONYMOUS, headers, metadata={"thread_id": "a\nb"})
    assert thread is not None
    assert thread.client_id == "t"
    with pytest.raises(Refused):
        thread_of(ANONYMOUS, {OPENWEBUI_CHAT_HEADER: "%FF"}, metadata={"thread_id": "m"})


def test_the_echo_is_percent_encoded_utf8_and_ascii_ids_are_echoed_as_is() -> None:
    assert thread_header_value("chat-1 (draft) #2") == "chat-1 (draft) #2"
    assert thread_header_value("日本語") == "%E6%97%A5%E6%9C%AC%E8%AA%9E"
    assert thread_header_value("100%") == "100%25"
    assert ThreadRef("日本語", "k:日本語").header == {THREAD_HEADER: "%E6%97%A5%E6%9C%AC%E8%AA%9E"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["metadata", "configured", "header"]))
def test_any_text_is_refused_or_echoed_in_ascii_and_named_again_by_its_echo(
    text: str, source: str
) -> None:
    if source == "metadata":
        kwargs: dict[str, Any] = {"headers": {}, "metadata": {"thread_id": text}}
    elif source == "configured":
        kwargs = {"headers": {}, "configured": text}
    else:
        kwargs = {"headers": {THREAD_HEADER: text.encode("utf-8", "replace").decode("latin-1")}}
    try:
        thread = thread_of("key-a", **kwargs)
    except Refused as error:
        refused = (status_of(error), error.code)
        assert refused == (400, "invalid_thread_id")
        return
    if thread is None:
        assert not text.strip()
        return
    echoed = thread.header[THREAD_HEADER]
    assert echoed.isascii()
    assert echoed.isprintable()
    echoed.encode("latin-1")  # what the response writer does: never fails
    assert unquote(echoed) == thread.client_id
    again = thread_of("key-a", {THREAD_HEADER: echoed})
    assert again is not None
    assert again.stored_id == thread.stored_id
