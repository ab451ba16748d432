"""Helpers over LangChain message content, which providers send as a string or as blocks."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from langchain_core.messages import BaseMessage

from nodes.images import image_key

_TEXT_BLOCKS = frozenset({"text", "text_delta"})


def content_text(content: str | list[str | dict[str, Any]]) -> str:
    """The text of message content: a string, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    return "".join(
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in content
        if isinstance(block, str) or block.get("type") in _TEXT_BLOCKS
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    r"""Text that can be encoded as UTF-8 and stored in PostgreSQL.

    Valid JSON can carry a lone surrogate escape (`"\ud800"`) and an escaped NUL: the first
    decodes to a str that no UTF-8 encoder takes (the provider SDKs', the checkpointer's, a
    JSON response's), the second cannot be stored in a PostgreSQL text or jsonb value. A
    lone surrogate becomes U+FFFD, NUL is dropped; `json.loads` has already joined valid
    pairs, so a surrogate left in a str is always lone.
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


def message_text(message: BaseMessage) -> str:
    """The text of a message."""
    return content_text(message.content)


_HIDDEN_OPENER = re.compile(r"<(details|think)\b", re.IGNORECASE)
_HIDDEN_CLOSERS = {
    "details": re.compile(r"</details>", re.IGNORECASE),
    "think": re.compile(r"</think>", re.IGNORECASE),
}
_SPACE = re.compile(r"\s+")


def _without_hidden_blocks(text: str) -> str:
    r"""`text` without its `<details …>…</details>` and `<think …>…</think>` blocks.

    What `re.sub(r"<(details|think)\b[^>]*>.*?</\1>", "", text, flags=DOTALL | IGNORECASE)`
    does, in time linear in the text: that expression searches again from every opening tag
    that is never closed (16,000 `<think>` in 112 KB of a message cost 24 s). Here each
    search goes on from where the last one ended: a tag's `>` is found once for all the tags
    before it, and a block with no closing tag left ends the search for its kind.
    """
    kept: list[str] = []
    copied = search = 0
    tag_end = -1  # the first `>` at or after the last opener's name
    unclosed: set[str] = set()
    while (opener := _HIDDEN_OPENER.search(text, search)) is not None:
        search = opener.end()
        name = opener.group(1).lower()
        if name in unclosed:
            continue
        if tag_end < opener.end():
            tag_end = text.find(">", opener.end())
            if tag_end < 0:
                break  # no opening tag can end any more
        closer = _HIDDEN_CLOSERS[name].search(text, tag_end + 1)
        if closer is None:
            unclosed.add(name)
            continue
        kept.append(text[copied : opener.start()])
        copied = search = closer.end()
    kept.append(text[copied:])
    return "".join(kept)


Content = str | list[str | dict[str, Any]]


def comparable_text(text: str) -> str:
    """Text as compared between a client's history and the stored thread.

    Whitespace runs count as one space, and `<details>`/`<think>` blocks (the reasoning a chat
    UI folds into the answer it shows) do not count.
    """
    return _SPACE.sub(" ", _without_hidden_blocks(text)).strip()


def comparable_content(content: Content) -> object:
    """Content as compared: text by its comparable text, images by `image_key`, the rest as JSON.

    An image compares by the SHA-256 of its bytes (or its URL), inline or by reference.
    Content with one text part compares as that text, so a string and a one-block list of the
    same text are equal.
    """
    if isinstance(content, str):
        return comparable_text(content)
    parts: list[object] = []
    for block in content:
        if isinstance(block, str):
            parts.append(comparable_text(block))
        elif block.get("type") == "text":
            parts.append(comparable_text(str(block.get("text", ""))))
        elif (image := image_key(block)) is not None:
            # Inline or stored by reference, OpenAI part or standard block: the same image.
            parts.append(("image", image))
        else:
            parts.append(("block", json.dumps(block, sort_keys=True, default=repr)))
    joined = [p for p in parts if p != ""]
    return joined[0] if len(joined) == 1 and isinstance(joined[0], str) else tuple(joined)


def content_digest(content: Content) -> str:
    """A digest of comparable content (32 hex digits of SHA-256); it does not reveal the text."""
    canonical = json.dumps(comparable_content(content), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


CLIENT_ID_PREFIX = "client-"
"""Ids of messages that came from the client (its history, its tool results)."""

_DIGEST_MARK = ".d2-"
"""Separates a client id's random part from the digest of the content it arrived with; the
`2` is the version of `content_digest` (a different version is not compared: such a message
compares by its stored content). Version 2 digests images by their bytes' SHA-256."""


def client_message_id(content: Content | None = None) -> str:
    """A fresh id for a message the client sent: the shim tells them from the graph's own.

    With `content` (what the client sent), the id also carries its `content_digest`. The id
    is what a node must keep to replace a message in the thread (`add_messages` replaces by
    id), so the digest stays with the message whatever a node does to its content, and
    survives every checkpointer (see `server.reconcile`).
    """
    random_part = uuid.uuid4().hex
    if content is None:
        return f"{CLIENT_ID_PREFIX}{random_part}"
    return f"{CLIENT_ID_PREFIX}{random_part}{_DIGEST_MARK}{content_digest(content)}"


def is_client_message(message: BaseMessage) -> bool:
    """True for messages the client sent (so it has seen them) rather than the graph made."""
    return (message.id or "").startswith(CLIENT_ID_PREFIX)


def client_digest(message: BaseMessage) -> str | None:
    """The digest of the content a client message arrived with, if its id carries one."""
    if not is_client_message(message):
        return None
    _, mark, digest = (message.id or "").partition(_DIGEST_MARK)
    return digest if mark and len(digest) == 32 else None
