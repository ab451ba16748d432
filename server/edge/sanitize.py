r"""Request bodies made safe before any door reads them: pure ASGI, for every door alike.

Before a door parses a write's body, this middleware, in order:

* refuses what the headers alone decide (`server.edge.request_gate`): a cross-site browser write
  on an open door (403), a body that is not JSON by its `Content-Type` (415);
* checks the caller's key as the request's door will (`authenticate`, given by the app):
  the body of a caller without a valid key is never read nor scanned here; the request gets
  its door's 401 (or 403) at once, so no body costs the service anything before its key is
  checked. The JSON-RPC door (`/mcp`) checks its key itself before reading a body, and
  answers in its own way, so its requests go on to it;
* refuses a body no decoder can read, in time linear in its size (`server.edge.json_scan`):
  bytes that are not UTF-8 (which JSON must be), nesting deeper than `MAX_JSON_DEPTH` (the
  decoders recurse once per level: a `RecursionError`), a number of more digits than Python
  turns into an int (a `ValueError` no door expects). Each is a 400 in the door's shape:
  OpenAI's `invalid_json`, or on `/mcp` JSON-RPC's parse error (-32700), as MCP answers a
  body that is not JSON;
* repairs a body with a lone surrogate or a NUL escape: it is parsed, every string (keys
  too) is repaired (a lone surrogate becomes U+FFFD, NUL is removed), and the body is
  serialised again, with its Content-Length set to match. A lone surrogate escape
  (`"\ud800"`) is valid JSON, yet the str it decodes to cannot be encoded as UTF-8, so the
  provider SDK's encoder, the checkpointer and the response all fail on it; an escaped NUL
  (`"\u0000"`) cannot be stored in a PostgreSQL text or jsonb value.

Valid UTF-8 cannot encode a surrogate, and JSON forbids a raw NUL in a string, so only escapes
bring them in, and a bytes scan finds those: bodies without one pass untouched, at the cost of
that scan (a `memchr` for a backslash, then a search for `\u` followed by a fixed pattern). A
valid pair (`"\ud83d\ude00"`, how ASCII-only encoders such as `json.dumps` write an emoji) is
kept; it costs a parse, as the scan does not tell it from a lone one. The openai SDK, httpx and
browsers send raw UTF-8, so their emoji never do. Every step is linear in the body: the UTF-8
check, the scan, the search, and the parse and rewrite of a body that needs repair.

Pure ASGI, not `BaseHTTPMiddleware`: after the body is replayed, `receive` is the server's
again, so an `http.disconnect` still reaches the run and cancels it.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Collection
from typing import Any, Final

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.errors import ErrorCode
from nodes.messages import clean_text
from server.auth import ANONYMOUS, Caller
from server.edge.json_scan import MAX_JSON_DEPTH, body_problem
from server.edge.request_gate import (
    WRITE_METHODS,
    cross_site_refused,
    has_body,
    is_json,
    route_path,
)
from server.errors import INVALID_JSON_MESSAGE, error_response, status_of
from server.refusals import Refused

__all__ = [
    "MAX_JSON_DEPTH",
    "BadBodyError",
    "SanitizeMiddleware",
    "checked_body",
    "needs_repair",
    "repaired_body",
]

_SUSPECT: Final = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
"""Any surrogate escape (`\\ud800`-`\\udfff`, a valid pair's too) and the NUL escape."""

UNSUPPORTED_MEDIA_TYPE_MESSAGE: Final = (
    "The request body must be JSON: send it with 'Content-Type: application/json'."
)
CROSS_SITE_MESSAGE: Final = (
    "Writes from another site's page are refused while this service has no API key: "
    "configure API_KEYS, or allow that page's origin in CORS_ORIGINS."
)
_RPC_PARSE_ERROR: Final = -32700
_RPC_INVALID_REQUEST: Final = -32600


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
    """A body no door can read: not UTF-8, too deep, a number too long, or not JSON."""


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
        BadBodyError: The body is not UTF-8, nests too deeply, holds a number too long to
            read, or is not JSON where it had to be parsed.
    """
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadBodyError("The request body is not valid UTF-8.") from error
    problem = body_problem(body)
    if problem is not None:
        raise BadBodyError(problem)
    if not needs_repair(body):
        return body
    return repaired_body(body) or body


def _rpc_error(status: int, code: int, message: str) -> Response:
    """A JSON-RPC error as the MCP SDK answers one about the request itself."""
    body = {"jsonrpc": "2.0", "id": "server-error", "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


def _detail_error(
    status: int, message: str, code: ErrorCode, *, headers: dict[str, str] | None = None
) -> Response:
    """An error in the LangGraph API door's shape (`server.graph_api.door.ErrorDetail`)."""
    return JSONResponse({"detail": message, "code": code}, status_code=status, headers=headers)


def _plain_text(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "text/plain"


def _set_header(scope: Scope, name: bytes, value: bytes) -> None:
    """Set one header of the request, in place (see `_set_content_length`)."""
    headers = [(key, old) for key, old in scope["headers"] if key.lower() != name]
    scope["headers"] = [*headers, (name, value)]


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


Authenticate = Callable[[Request], Caller]
"""The caller as the request's door checks it (its 401 or 403 raised as `Refused`)."""


class SanitizeMiddleware:
    """Checks a write's headers and key, then reads its body, refuses or repairs it, replays it.

    See the module docstring.

    Args:
        app: The app.
        authenticate: Checks the key as the request's door does (`server.wiring.deps.door_caller`).
        cors_origins: `CORS_ORIGINS`: sites whose pages may write to an open door.
        form_paths: Routes that take a form, not JSON (the inspector's sign-in): no JSON rule,
            no scan (the cross-site rule still holds).
        rpc_paths: The JSON-RPC door's paths (`/mcp`): body errors in its shape, and its key
            left to it.
        detail_paths: The paths of the LangGraph API door: a `text/plain` body is read as
            JSON there (LangGraph Studio sends its JSON so), and errors come in that door's
            `{"detail": ...}` shape (a body that is not JSON: 422).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        cors_origins: Collection[str] = (),
        form_paths: Collection[str] = (),
        rpc_paths: Collection[str] = (),
        detail_paths: Callable[[str], bool] = lambda _path: False,
    ) -> None:
        self.app = app
        self.detail_paths = detail_paths
        self.authenticate = authenticate
        self.cors_origins = frozenset(cors_origins)
        self.form_paths = frozenset(form_paths)
        self.rpc_paths = frozenset(rpc_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse what the headers and the key decide, then check the body (see the class)."""
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        verdict = self._gate(scope)
        if isinstance(verdict, Response):
            await verdict(scope, receive, send)
        elif verdict:
            await self._checked(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _gate(self, scope: Scope) -> Response | bool:
        """A refusal from the headers or the key; else whether the body is read and checked.

        Nothing here reads the body: a refused write, a write without a body, a form, and
        the JSON-RPC door's write without a valid key (it refuses that itself) go unread.
        """
        headers = Headers(scope=scope)
        path = route_path(scope)
        rpc = path in self.rpc_paths
        detail = self.detail_paths(path)
        if detail and _plain_text(headers.get("content-type")):
            _set_header(scope, b"content-type", b"application/json")
            headers = Headers(scope=scope)
        try:
            caller = self.authenticate(Request(scope))
        except Refused as error:
            unauthorised: Refused | None = error
        else:
            unauthorised = None
            if caller.key_id == ANONYMOUS and cross_site_refused(headers, self.cors_origins):
                if detail:
                    return _detail_error(403, CROSS_SITE_MESSAGE, ErrorCode.CROSS_SITE_REQUEST)
                return error_response(403, CROSS_SITE_MESSAGE, code=ErrorCode.CROSS_SITE_REQUEST)
        if not has_body(headers) or path in self.form_paths:
            return False
        if not is_json(headers.get("content-type")):
            if rpc:
                message = f"Unsupported Media Type: {UNSUPPORTED_MEDIA_TYPE_MESSAGE}"
                return _rpc_error(415, _RPC_INVALID_REQUEST, message)
            if detail:
                return _detail_error(
                    415, UNSUPPORTED_MEDIA_TYPE_MESSAGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE
                )
            return error_response(
                415, UNSUPPORTED_MEDIA_TYPE_MESSAGE, code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
            )
        if unauthorised is None:
            return True
        if rpc:
            return False
        if detail:
            return _detail_error(
                status_of(unauthorised),
                unauthorised.message,
                unauthorised.code,
                headers=unauthorised.headers,
            )
        return error_response(
            status_of(unauthorised),
            unauthorised.message,
            code=unauthorised.code,
            headers=unauthorised.headers,
        )

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body, check it, and run the app on the body it should read."""
        received = [await receive()]
        while _more_to_come(received[-1]):
            received.append(await receive())
        # A client that left before the end of its body: the app reads what came, then that.
        if received[-1]["type"] == "http.request":
            body = b"".join(message.get("body", b"") for message in received)
            try:
                checked = checked_body(body)
            except BadBodyError as error:
                await self._bad_body(scope, str(error))(scope, receive, send)
                return
            if checked is not body:
                _set_content_length(scope, len(checked))
            received = [{"type": "http.request", "body": checked, "more_body": False}]
        await self.app(scope, _replay(deque(received), receive), send)

    def _bad_body(self, scope: Scope, message: str) -> Response:
        """The 400 for a body no decoder can read, in the door's shape."""
        path = route_path(scope)
        if path in self.rpc_paths:
            return _rpc_error(400, _RPC_PARSE_ERROR, f"Parse error: {message}")
        if self.detail_paths(path):
            return _detail_error(422, message, ErrorCode.INVALID_JSON)
        return error_response(400, message, code=ErrorCode.INVALID_JSON)


def _replay(received: deque[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        if received:
            return received.popleft()
        return await receive()  # the server's own: it reports the client's disconnect

    return replay
