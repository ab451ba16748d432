r"""Request bodies made safe before any door reads them: pure ASGI, for `/v1` and `/agent` alike.

JSON may carry what the rest of the service cannot: a lone surrogate escape (`"\ud800"`) is
valid JSON, yet the str it decodes to cannot be encoded as UTF-8, so the provider SDK's
encoder, the checkpointer and the response all fail on it; an escaped NUL (`"\u0000"`) cannot
be stored in a PostgreSQL text or jsonb value. So, before a door parses a request body:

* bytes that are not UTF-8 (which JSON must be) get a 400 in OpenAI's shape: the doors would
  otherwise fail to decode them, the LangServe door with a 500;
* a body nested deeper than `MAX_JSON_DEPTH` gets a 400: the JSON decoders recurse once per
  level, and a few thousand `[` would end in a `RecursionError` (a 500 on the LangServe door);
* a body with a lone surrogate or a NUL escape is parsed, every string (keys too) is repaired
  (a lone surrogate becomes U+FFFD, NUL is removed), and the body is serialised again, with its
  Content-Length set to match; a body that then is not JSON gets the doors' 400.

Valid UTF-8 cannot encode a surrogate, and JSON forbids a raw NUL in a string, so only escapes
bring them in, and a bytes scan finds those: bodies without one pass untouched, at the cost of
that scan (a `memchr` for a backslash, then a regex only if there is one). A valid pair
(`"\ud83d\ude00"`, how ASCII-only encoders such as `json.dumps` write an emoji) is kept; it
costs a parse, as the scan does not tell it from a lone one. The openai SDK, httpx and browsers
send raw UTF-8, so their emoji never do.

Pure ASGI, not `BaseHTTPMiddleware`: after the body is replayed, `receive` is the server's
again, so an `http.disconnect` still reaches the run and cancels it.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.errors import ErrorCode
from nodes.messages import clean_text
from server.errors import INVALID_JSON_MESSAGE, error_response

__all__ = [
    "MAX_JSON_DEPTH",
    "BadBodyError",
    "SanitizeMiddleware",
    "checked_body",
    "needs_repair",
    "repaired_body",
    "too_deep",
]

_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_FORM_TYPES: Final = (b"multipart/", b"application/x-www-form-urlencoded")

_SUSPECT: Final = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
"""Any surrogate escape (`\\ud800`-`\\udfff`, a valid pair's too) and the NUL escape."""

MAX_JSON_DEPTH: Final = 200
"""Deeper than any chat request (a tool's JSON schema nests a few dozen levels at most)."""

_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def too_deep(body: bytes) -> bool:
    """Whether the JSON text nests deeper than `MAX_JSON_DEPTH`.

    Cheap for every ordinary body: fewer opening brackets than the limit cannot nest deeper.
    Otherwise the strings are cut out (brackets in text do not nest) and the rest is counted.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def needs_repair(body: bytes) -> bool:
    """Whether the JSON text may hold a lone surrogate or a NUL: the cheap test of every body.

    A false positive (a valid pair, or an escaped backslash before `u0000`) costs a parse;
    a false negative would let a lone surrogate through, so the test is the plain one.
    """
    return b"\\" in body and _SUSPECT.search(body) is not None


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_repaired(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(key): _repaired(item) for key, item in value.items()}
    return value


class BadBodyError(ValueError):
    """A body no door can read: not UTF-8, or (found while repairing it) not JSON."""


def repaired_body(body: bytes) -> bytes | None:
    """The body with every string repaired, or None when nothing needed repair.

    Raises:
        BadBodyError: The body is not JSON (or nests too deeply to be read).
    """
    try:
        value = json.loads(body)
        fixed = _repaired(value)
    except (ValueError, RecursionError) as error:
        raise BadBodyError(INVALID_JSON_MESSAGE) from error
    if fixed == value:
        return None  # the scan was fooled by a look-alike (`\\ud800` is plain text)
    return json.dumps(fixed, ensure_ascii=False, separators=(",", ":")).encode()


def checked_body(body: bytes) -> bytes:
    """The body the doors should read: this one, or its repaired copy.

    Raises:
        BadBodyError: The body is not UTF-8, nests too deeply, or is not JSON where it had
            to be parsed.
    """
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadBodyError("The request body is not valid UTF-8.") from error
    if too_deep(body):
        raise BadBodyError(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
    if not needs_repair(body):
        return body
    return repaired_body(body) or body


def _inspected(scope: Scope) -> bool:
    """Every request body but a form's: the doors (LangServe too) read any other as JSON."""
    if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            return not value.lower().startswith(_FORM_TYPES)
    return True


def _set_content_length(scope: Scope, length: int) -> None:
    """Set the repaired body's length, in place.

    In place: routing writes the matched route into this very scope, which the outer
    middleware (metrics, access log) read back.
    """
    scope["headers"] = [
        (name, str(length).encode() if name == b"content-length" else value)
        for name, value in scope["headers"]
    ]


def _more_to_come(message: Message) -> bool:
    return message["type"] == "http.request" and bool(message.get("more_body", False))


class SanitizeMiddleware:
    """Reads a request's body, refuses or repairs it (see the module docstring), replays it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body, check it, and run the app on the body it should read."""
        if not _inspected(scope):
            await self.app(scope, receive, send)
            return
        received = [await receive()]
        while _more_to_come(received[-1]):
            received.append(await receive())
        # A client that left before the end of its body: the app reads what came, then that.
        if received[-1]["type"] == "http.request":
            body = b"".join(message.get("body", b"") for message in received)
            try:
                checked = checked_body(body)
            except BadBodyError as error:
                response = error_response(400, str(error), code=ErrorCode.INVALID_JSON)
                await response(scope, receive, send)
                return
            if checked is not body:
                _set_content_length(scope, len(checked))
            received = [{"type": "http.request", "body": checked, "more_body": False}]
        await self.app(scope, _replay(deque(received), receive), send)


def _replay(received: deque[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        if received:
            return received.popleft()
        return await receive()  # the server's own: it reports the client's disconnect

    return replay
