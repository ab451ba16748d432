"""What the sanitiser decides from a write's headers and key, before it reads a byte of body."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from graph.errors import ErrorCode
from server.auth import ANONYMOUS, Caller
from server.edge.request_gate import (
    WRITE_METHODS,
    cross_site_refused,
    has_body,
    is_json,
    route_path,
)
from server.edge.sanitize import SanitizeMiddleware
from server.inspector.routes import FORM_PATHS
from server.refusals import Refused

# --- the rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
        "application/merge-patch+json",
        "application/vnd.api+json",
    ],
)
def test_json_media_types_are_json(value: str) -> None:
    assert is_json(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonx",
        "application/json-seq",
        "json",
    ],
)
def test_other_media_types_are_not(value: str | None) -> None:
    assert not is_json(value)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"content-length": "12"}, True),
        ({"content-length": "0"}, False),
        ({"transfer-encoding": "chunked"}, True),
        ({}, False),
    ],
)
def test_a_body_is_a_length_or_chunks(headers: dict[str, str], body: bool) -> None:
    assert has_body(Headers(headers)) is body


@pytest.mark.parametrize(
    ("site", "origin", "allowed", "refused"),
    [
        ("cross-site", "https://evil.example", [], True),
        ("Cross-Site", None, [], True),
        ("cross-site", "https://chat.example", ["https://chat.example"], False),
        ("cross-site", "https://evil.example", ["https://chat.example"], True),
        ("cross-site", "https://evil.example", ["*"], False),
        ("same-origin", "http://127.0.0.1:8000", [], False),
        ("same-site", "http://127.0.0.1:3000", [], False),
        ("none", None, [], False),
        (None, "https://evil.example", [], False),  # no Fetch Metadata: not judged here
    ],
)
def test_only_cross_site_writes_from_origins_cors_does_not_allow_are_refused(
    site: str | None, origin: str | None, allowed: list[str], refused: bool
) -> None:
    headers = {"sec-fetch-site": site, "origin": origin}
    present = {name: value for name, value in headers.items() if value is not None}
    assert cross_site_refused(Headers(present), allowed) is refused


def test_the_route_path_is_the_path_under_the_proxys_prefix() -> None:
    assert route_path({"path": "/svc/mcp", "root_path": "/svc"}) == "/mcp"
    assert route_path({"path": "/mcp", "root_path": ""}) == "/mcp"
    assert route_path({"path": "/svcx/mcp", "root_path": "/svc"}) == "/svcx/mcp"


# --- the middleware -----------------------------------------------------------------------

KEYED = Refused(ErrorCode.INVALID_API_KEY, "Incorrect API key provided.")


def open_door(request: Request) -> Caller:
    return Caller(ANONYMOUS)


def keyed_door(request: Request) -> Caller:
    if request.headers.get("authorization") == "Bearer right":
        return Caller("0123456789abcdef")
    raise KEYED


class Inner:
    """The app behind the middleware: records whether it ran and what body it read."""

    def __init__(self) -> None:
        self.ran = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.ran = True
        more = True
        while more:
            message = await receive()
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call(
    authenticate: Callable[[Request], Caller],
    *,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: bytes = b'{"model":"m"}',
    **options: Any,
) -> tuple[int, dict[str, Any] | None, Inner, int]:
    """One request through the middleware: status, JSON answer, the app, body reads."""
    inner = Inner()
    reads = 0
    given = {"content-type": "application/json", "content-length": str(len(body))}
    given.update(headers or {})

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in given.items() if v],
    }
    middleware = SanitizeMiddleware(inner, authenticate=authenticate, **options)
    await middleware(scope, receive, send)
    answer = sent[1].get("body", b"") if len(sent) > 1 else b""
    return int(sent[0]["status"]), json.loads(answer) if answer else None, inner, reads


async def test_a_cross_site_write_to_an_open_door_is_a_403_before_the_body() -> None:
    status, answer, inner, reads = await call(open_door, headers={"sec-fetch-site": "cross-site"})
    assert status == 403
    assert answer is not None
    assert answer["error"]["code"] == "cross_site_request"
    assert answer["error"]["type"] == "permission_error"
    assert (inner.ran, reads) == (False, 0)


@pytest.mark.parametrize("method", sorted(WRITE_METHODS))
async def test_every_write_method_is_judged_even_without_a_body(method: str) -> None:
    headers = {"sec-fetch-site": "cross-site", "content-length": "0", "content-type": ""}
    status, _, _, _ = await call(open_door, method=method, headers=headers, body=b"")
    assert status == 403


async def test_a_cross_site_write_from_a_cors_origin_or_with_a_key_is_let_through() -> None:
    allowed = {"sec-fetch-site": "cross-site", "origin": "https://chat.example"}
    status, _, inner, _ = await call(
        open_door, headers=allowed, cors_origins=["https://chat.example"]
    )
    assert (status, inner.body) == (204, b'{"model":"m"}')
    keyed = {"sec-fetch-site": "cross-site", "authorization": "Bearer right"}
    status, _, inner, _ = await call(keyed_door, headers=keyed)
    assert (status, inner.ran) == (204, True)


async def test_reads_are_not_judged_by_site() -> None:
    status, _, inner, _ = await call(
        open_door, method="GET", headers={"sec-fetch-site": "cross-site"}, body=b""
    )
    assert (status, inner.ran) == (204, True)


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_by_its_type_is_a_415_unread(content_type: str) -> None:
    status, answer, inner, reads = await call(
        open_door, headers={"content-type": content_type}, body=b'{"model":"m"}'
    )
    assert status == 415
    assert answer is not None
    assert answer["error"]["code"] == "unsupported_media_type"
    assert answer["error"]["type"] == "invalid_request_error"
    assert (inner.ran, reads) == (False, 0)


async def test_a_write_without_a_body_needs_no_type() -> None:
    headers = {"content-type": "", "content-length": "0"}
    status, _, inner, _ = await call(open_door, headers=headers, body=b"")
    assert (status, inner.ran) == (204, True)


async def test_a_form_route_takes_its_form_unread() -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    status, _, inner, _ = await call(
        keyed_door,
        path="/agent/inspect/login",
        headers=form,
        body=b"key=\xff",
        form_paths=FORM_PATHS,
    )
    assert (status, inner.body) == (204, b"key=\xff")


async def test_without_a_valid_key_the_body_is_never_read() -> None:
    """The pre-auth stall is gone at the root: no key, no scan, the door's 401 at once."""
    stall = b"[" * 201 + b'"' + b'\\"' * 12_000
    status, answer, inner, reads = await call(keyed_door, body=stall)
    assert status == 401
    assert answer is not None
    assert answer["error"]["message"] == KEYED.message
    assert (inner.ran, reads) == (False, 0)


async def test_with_a_valid_key_the_body_is_checked() -> None:
    headers = {"authorization": "Bearer right"}
    status, answer, inner, _ = await call(keyed_door, headers=headers, body=b"[" * 300)
    assert status == 400
    assert answer is not None
    assert answer["error"]["code"] == "invalid_json"
    assert not inner.ran


RPC_PATHS = ("/mcp", "/mcp/")


async def test_the_json_rpc_door_checks_its_key_itself_and_gets_the_body_unread() -> None:
    stall = b"[" * 201 + b'"' + b'\\"' * 12_000
    status, _, inner, _ = await call(keyed_door, path="/mcp", body=stall, rpc_paths=RPC_PATHS)
    assert (status, inner.body) == (204, stall)  # the door refuses it before reading it


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 300, "nests deeper"),
        (b'{"id":' + b"1" * 5000 + b"}", "digits"),
        (b'{"a":"\xff"}', "UTF-8"),
    ],
)
async def test_the_json_rpc_door_refuses_a_bad_body_as_json_rpc_does(
    body: bytes, message: str
) -> None:
    status, answer, inner, _ = await call(open_door, path="/mcp/", body=body, rpc_paths=RPC_PATHS)
    assert status == 400
    assert answer is not None
    assert answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == -32700
    assert answer["error"]["message"].startswith("Parse error: ")
    assert message in answer["error"]["message"]
    assert not inner.ran


async def test_the_json_rpc_door_refuses_a_body_that_is_not_json_by_type_as_json_rpc_does() -> None:
    status, answer, _, _ = await call(
        open_door, path="/mcp", headers={"content-type": "text/plain"}, rpc_paths=RPC_PATHS
    )
    assert status == 415
    assert answer is not None
    assert (answer["jsonrpc"], answer["error"]["code"]) == ("2.0", -32600)
