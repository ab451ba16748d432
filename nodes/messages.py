"""Helpers over LangChain message content, which providers send as a string or as blocks."""

from __future__ import annotations

import hashlib
import json
import math
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


MAX_ARGUMENT_DEPTH = 64
"""Nesting a client's tool call arguments may have (real tools' arguments nest a few levels;
the checkpointer's encoder gives up near 250, JSON's decoder recurses once per level)."""

_INT_RANGE = range(-(2**63), 2**64)
"""The integers the checkpointer's encoder (msgpack) can store."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is not a finite number")
    return number


def _storable(value: Any) -> Any:
    """A copy of a JSON value with its strings repaired (`clean_text`), if it can be stored.

    Iterative, so hostile input cannot exhaust the stack; the value itself is left as it is.

    Raises:
        ValueError: Nesting deeper than `MAX_ARGUMENT_DEPTH`, an integer beyond 64 bits (the
            checkpointer's msgpack takes no more), or a float that is not finite.
    """
    root: list[Any] = [value]
    stack: list[tuple[list[Any] | dict[str, Any], Any, int]] = [(root, 0, 0)]
    while stack:
        parent, key, depth = stack.pop()  # depth: the containers around the item
        item = parent[key]
        if isinstance(item, list | dict) and depth >= MAX_ARGUMENT_DEPTH:
            raise ValueError(f"nested deeper than {MAX_ARGUMENT_DEPTH} levels")
        if isinstance(item, str):
            parent[key] = clean_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{item} is not a finite number")
        elif isinstance(item, int):
            if item not in _INT_RANGE:
                raise ValueError("an integer beyond 64 bits")
        elif isinstance(item, list):
            copied = list(item)
            parent[key] = copied
            stack.extend((copied, index, depth + 1) for index in range(len(copied)))
        elif isinstance(item, dict):
            repaired = {clean_text(str(name)): member for name, member in item.items()}
            parent[key] = repaired
            stack.extend((repaired, name, depth + 1) for name in repaired)
    return root[0]


def storable_args(args: dict[str, Any]) -> dict[str, Any]:
    """A tool call's args that a client sent already parsed (`/agent`), as the thread keeps them.

    Args that `tool_call_args` would take are kept (their strings repaired); others, as
    there, become their JSON text under `__raw__`, so no door stores what the checkpointer
    cannot encode.
    """
    try:
        kept: dict[str, Any] = _storable(args)
    except ValueError:
        try:
            text = json.dumps(args)
        except (TypeError, ValueError, RecursionError):  # the body's depth bounds it
            text = repr(args)[:1000]
        return {"__raw__": clean_text(text)}
    return kept


def tool_call_args(arguments: str) -> dict[str, Any]:
    """A client's tool call `arguments` (a JSON string) as the `args` of a LangChain tool call.

    A JSON object is taken as it is (its strings repaired as `clean_text` does), empty
    arguments are `{}`, another JSON value is kept as `{"__value__": value}`. Anything else is
    kept as the text it is, `{"__raw__": arguments}`, never refused: a model may write bad
    arguments, and its client sends them back with every later turn of the history. That is
    text that is not JSON, NaN or Infinity, a number out of range (more than 4300 digits, an
    integer beyond 64 bits, a float that overflows), or nesting deeper than
    `MAX_ARGUMENT_DEPTH`, none of which the checkpointer or a provider's JSON could take.
    """
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments, parse_constant=_refuse_constant, parse_float=_finite)
        value = _storable(value)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return {"__raw__": clean_text(arguments)}
    return value if isinstance(value, dict) else {"__value__": value}


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
    survives every checkpointer (see `server.turns.reconcile`).
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
