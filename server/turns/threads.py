"""Which thread a request names, for every door: one extractor, bounded, key-scoped.

The thread id comes from, first match wins: the door's own field (`configurable.thread_id`
on `/agent`), the `X-Thread-Id` header, Open WebUI's `X-OpenWebUI-Chat-Id` header, then
`metadata.thread_id` of the body. None of them means a stateless run that stores nothing.

What a thread id may be is decided here, once, before anything is stored (`checked_thread_id`):
any printable Unicode text (letters of every script, digits, punctuation, symbols, emoji,
the space), at most `MAX_THREAD_ID_LENGTH` characters, surrounding whitespace ignored.
Control and format characters (a line feed, NUL, U+202E and the other bidirectional
overrides; the zero-width joiners that scripts and emoji need stay allowed), surrogates,
private-use and unassigned code points, and every other space or separator are refused with a
400 `invalid_thread_id`: they cannot travel in an HTTP header, and would show a thread under
another name than its own.

In the `X-Thread-Id` and `X-OpenWebUI-Chat-Id` headers, both ways, the id is percent-encoded
UTF-8 (RFC 3986): printable ASCII other than `%` stands for itself, so an ASCII id is sent and
echoed as is, and `日本語` is `%E6%97%A5%E6%9C%AC%E8%AA%9E` (raw UTF-8 header bytes are read
too). The echo (`ThreadRef.header`) is ASCII by construction: a response that carries a
stored turn can never fail on it.

Two keys that pick the same thread id (say "default") must never read or continue each
other's conversation, so every door stores a thread under `<key_id>:<thread_id>`. An open
service (no keys configured) has a single anonymous caller, whose ids are stored as sent,
so `langgraph dev`, scripts and the checkpointer's own tools see the same ids as the client.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from graph.errors import ErrorCode
from server.auth import ANONYMOUS
from server.refusals import Refused, thread_not_found

__all__ = [
    "MAX_THREAD_ID_LENGTH",
    "OPENWEBUI_CHAT_HEADER",
    "THREAD_HEADER",
    "ThreadRef",
    "checked_thread_id",
    "header_thread_id",
    "path_thread",
    "scoped_thread_id",
    "thread_header_value",
    "thread_of",
    "unscoped_thread_id",
]

THREAD_HEADER = "x-thread-id"
OPENWEBUI_CHAT_HEADER = "x-openwebui-chat-id"
MAX_THREAD_ID_LENGTH = 256
"""Longer ids are refused: a thread id becomes an index key of the checkpointer."""

_HEADERS = ((THREAD_HEADER, "X-Thread-Id"), (OPENWEBUI_CHAT_HEADER, "X-OpenWebUI-Chat-Id"))
_HEADER_LABELS = frozenset(label for _, label in _HEADERS)


@dataclass(frozen=True)
class ThreadRef:
    """The thread a request continues: as the client named it, and as it is stored.

    Attributes:
        delta: The client may send only new messages (see `server.turns.reconcile.plan`): it
            named the thread explicitly (`X-Thread-Id`, or a door's own field).
    """

    client_id: str
    stored_id: str
    delta: bool = False

    @property
    def header(self) -> dict[str, str]:
        """The `X-Thread-Id` echo of a response on this thread (`thread_header_value`)."""
        return {THREAD_HEADER: thread_header_value(self.client_id)}


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


_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
"""Control, format, surrogate, private-use, unassigned; separators (the space excepted)."""

_ALLOWED_ANYWAY = frozenset({" ", "\u200c", "\u200d"})
"""The space, and the zero-width (non-)joiner: Persian words and emoji sequences need them."""

_ECHOED_AS_IS = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")
"""Printable ASCII but `%`: what a thread id header carries unencoded."""


def _refused_character(thread_id: str) -> str | None:
    if thread_id.isascii() and thread_id.isprintable():
        return None  # the common case, without a look at each character
    for character in thread_id:
        if character in _ALLOWED_ANYWAY:
            continue
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            return character
    return None


def _invalid(where: str, message: str) -> Refused:
    return Refused(ErrorCode.INVALID_THREAD_ID, f"{where} {message}", param=where)


def checked_thread_id(value: str, where: str) -> str | None:
    """A thread id as the client sent it, checked (see the module docstring).

    Args:
        value: The id as read from the body, a door's field or a decoded header.
        where: How the error message and its `param` name the id's source.

    Returns:
        The id without its surrounding whitespace, or None when that leaves nothing (no
        thread: a stateless run).

    Raises:
        Refused: `invalid_thread_id`, `param` set to `where`, for an id over
            `MAX_THREAD_ID_LENGTH` characters or with a character that is refused.
    """
    thread_id = value.strip()
    if not thread_id:
        return None
    if len(thread_id) > MAX_THREAD_ID_LENGTH:
        raise _invalid(where, f"is longer than {MAX_THREAD_ID_LENGTH} characters.")
    refused = _refused_character(thread_id)
    if refused is not None:
        raise _invalid(
            where,
            f"holds the character U+{ord(refused):04X}: a thread id is printable text, "
            "without control or format characters, and no space but U+0020.",
        )
    return thread_id


def thread_header_value(thread_id: str) -> str:
    """How a thread id travels in a header: percent-encoded UTF-8, printable ASCII but `%` as is.

    `urllib.parse.unquote` of it gives the id back. The value is always printable ASCII, so
    it can be written in any response.
    """
    return quote(thread_id, safe=_ECHOED_AS_IS)


def _from_header(value: str, where: str) -> str:
    """A header's id as text: its bytes read as UTF-8, then percent-decoded.

    Raises:
        Refused: `invalid_thread_id` when either is not UTF-8.
    """
    try:
        text = value.encode("latin-1").decode("utf-8")  # the ASGI server decoded latin-1
        return unquote(text, errors="strict")
    except UnicodeError:
        raise _invalid(where, "is not percent-encoded UTF-8.") from None


def _named(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
        Refused: `invalid_thread_id` for an id that `checked_thread_id` refuses,
            or a header that is not percent-encoded UTF-8.
    """
    candidates: list[tuple[str | None, str, bool]] = [(_named(configured), configured_as, True)]
    for name, label in _HEADERS:
        candidates.append((headers.get(name), label, name == THREAD_HEADER))
    candidates.append((_named((metadata or {}).get("thread_id")), "metadata.thread_id", False))
    for value, where, delta in candidates:
        if not value:
            continue
        if where in _HEADER_LABELS:
            value = _from_header(value, where)  # only the source that is read is decoded
        thread_id = checked_thread_id(value, where)
        if thread_id is not None:
            return ThreadRef(thread_id, scoped_thread_id(key_id, thread_id), delta=delta)
    return None


def path_thread(key_id: str, thread_id: str, *, param: str = "thread_id") -> ThreadRef:
    """The caller's thread a URL path names (`/.../threads/{thread_id}`).

    Checked as every door checks an id; the client named it explicitly, so it may send only
    new messages.

    Raises:
        Refused: `invalid_thread_id` (naming `param`); `thread_not_found` for an id that
            is blank (no door could have stored it).
    """
    checked = checked_thread_id(thread_id, param)
    if checked is None:
        raise thread_not_found(thread_id, param=param)
    return ThreadRef(checked, scoped_thread_id(key_id, checked), delta=True)
