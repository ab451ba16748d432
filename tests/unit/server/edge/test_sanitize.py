"""Request body repair without a server: what the scan flags, what the repair writes."""

from __future__ import annotations

import json

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import ANONYMOUS, Caller
from server.edge.json_scan import body_problem
from server.edge.sanitize import (
    MAX_JSON_DEPTH,
    BadBodyError,
    SanitizeMiddleware,
    checked_body,
    needs_repair,
    repaired_body,
)


def too_deep(body: bytes) -> bool:
    return body_problem(body) is not None


def sanitizer(app: ASGIApp) -> SanitizeMiddleware:
    """The middleware of an open service (every caller anonymous)."""
    return SanitizeMiddleware(app, authenticate=lambda request: Caller(ANONYMOUS))


def string(raw: bytes) -> bytes:
    """A JSON body holding `raw` (escapes intact) as a key and as a value."""
    return b'{"messages":[{"content":"%s"}],"metadata":{"%s":"v"}}' % (raw, raw)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (rb"\ud800", "\ufffd"),
        (rb"a\uDBFFb", "a\ufffdb"),  # hex digits in either case
        (rb"\udc00", "\ufffd"),  # a low surrogate alone
        (rb"\udc00\ud800", "\ufffd\ufffd"),  # a pair in the wrong order is two lone ones
        (rb"\ud83d\ud83d\ude00", "\ufffd\U0001f600"),  # a lone high, then a pair
        (rb"\ud83d\ude00\ude00", "\U0001f600\ufffd"),  # a pair, then a lone low
        (rb"a\u0000b", "ab"),
        (rb"\\\ud800", "\\\ufffd"),  # an escaped backslash, then a lone surrogate
        (rb"\\ud83d\ude00", "\\ud83d\ufffd"),  # text "\ud83d", then a lone low surrogate
    ],
)
def test_lone_surrogates_become_replacement_characters_and_nul_goes(raw: bytes, text: str) -> None:
    body = string(raw)
    assert needs_repair(body)
    fixed = checked_body(body)
    assert json.loads(fixed) == {"messages": [{"content": text}], "metadata": {text: "v"}}
    fixed.decode("utf-8")  # strict: the repaired body is plain UTF-8 again


@pytest.mark.parametrize(
    "raw",
    [
        rb"plain",
        "caf\u00e9 \U0001f600".encode(),  # raw UTF-8, as most clients send it
        rb"caf\u00e9 \u4e2d",  # ASCII-only escapes of ordinary characters
        rb"\ud83d\ude00 \uD83D\uDE00",  # valid pairs: an emoji, as ASCII-only encoders write it
        rb"\\u0000 is how JSON spells NUL",  # an escaped backslash: text, not NUL
    ],
)
def test_bodies_without_damage_pass_as_the_same_bytes(raw: bytes) -> None:
    body = string(raw)
    assert checked_body(body) is body


def test_most_bodies_are_not_parsed_at_all() -> None:
    """The fast path: only a surrogate or NUL escape (or a look-alike) costs a parse."""
    assert not needs_repair(string(rb"plain"))
    assert not needs_repair(string("caf\u00e9 \U0001f600 \\n".encode()))
    assert not needs_repair(string(rb"caf\u00e9 \ud7ff \ue000 \n\t\" \\"))
    for kept in (rb"\ud83d\ude00", rb"\\ud800", rb"\\u0000"):  # parsed, then passed unchanged
        assert needs_repair(string(kept))
        assert repaired_body(string(kept)) is None


def test_every_string_is_repaired_however_deep_and_other_values_stay() -> None:
    body = rb'{"a":[1,2.5,true,null,{"b\u0000":["x\ud800",{"c":"\udfff"}]}],"n":-0.0}'
    assert json.loads(checked_body(body)) == {
        "a": [1, 2.5, True, None, {"b": ["x\ufffd", {"c": "\ufffd"}]}],
        "n": -0.0,
    }


@pytest.mark.parametrize(
    "body",
    [
        b'{"content":"caf\xe9"}',  # Latin-1, not UTF-8
        b'{"content":"\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes
        b'{"content":"\xf0\x9f\x98"}',  # a truncated sequence
    ],
)
def test_bytes_that_are_not_utf8_are_refused(body: bytes) -> None:
    with pytest.raises(BadBodyError, match="UTF-8"):
        checked_body(body)


def test_a_damaged_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(BadBodyError, match="JSON"):
        checked_body(rb'{"content":"\ud800"')


def test_a_body_that_is_not_json_but_has_no_escape_is_left_to_the_doors() -> None:
    assert checked_body(b"not json") == b"not json"


# --- the middleware -----------------------------------------------------------------------


class Recorder:
    """An inner ASGI app that reads its whole body, then waits for the client to leave."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.after_body: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.headers = dict(scope["headers"])
        more = True
        while more:
            message = await receive()
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        self.after_body.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def serve_once(
    app: ASGIApp, chunks: list[bytes], content_type: bytes = b"application/json"
) -> list[Message]:
    """Send `chunks` as one request's body, then a disconnect; return what the app sent."""
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    incoming.append({"type": "http.disconnect"})
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    length = str(sum(len(chunk) for chunk in chunks)).encode()
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", content_type), (b"content-length", length)],
    }
    await app(scope, receive, send)
    return sent


async def test_the_app_reads_the_repaired_body_its_length_and_then_the_disconnect() -> None:
    inner = Recorder()
    await serve_once(sanitizer(inner), [b'{"content":"a\\ud8', b'00b"}'])

    assert json.loads(inner.body) == {"content": "a\ufffdb"}
    assert inner.headers[b"content-length"] == str(len(inner.body)).encode()
    assert inner.after_body == ["http.disconnect"]  # a client that leaves still cancels the run


async def test_an_untouched_body_reaches_the_app_as_it_came() -> None:
    inner = Recorder()
    chunks = [b'{"content":"caf\\u00e9', b' \\ud83d\\ude00"}']
    await serve_once(sanitizer(inner), chunks)

    assert inner.body == b"".join(chunks)
    assert inner.headers[b"content-length"] == str(len(inner.body)).encode()
    assert inner.after_body == ["http.disconnect"]


async def test_a_body_that_is_not_utf8_is_a_400_and_the_app_never_runs() -> None:
    inner = Recorder()
    sent = await serve_once(sanitizer(inner), [b'{"content":"\xff"}'])

    assert sent[0]["status"] == 400
    error = json.loads(sent[1]["body"])["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_json",
        None,
    )
    assert inner.body == b""


async def test_a_form_body_is_a_415_and_the_app_never_runs() -> None:
    """The doors read every body as JSON (LangServe whatever its type): a form is refused."""
    inner = Recorder()
    sent = await serve_once(sanitizer(inner), [b"a=\xff"], b"application/x-www-form-urlencoded")
    assert sent[0]["status"] == 415
    assert json.loads(sent[1]["body"])["error"]["code"] == "unsupported_media_type"
    assert inner.body == b""


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep = b'{"a":' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}"
    with pytest.raises(BadBodyError, match="nests deeper"):
        checked_body(deep)
    # Exactly at the limit (the object counts as a level) is fine.
    limit = b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert checked_body(limit) is limit


def test_brackets_in_text_do_not_count_as_nesting() -> None:
    text = json.dumps({"content": "[" * 5000 + "{" * 5000}).encode()
    assert not too_deep(text)
    # Closing brackets hidden in strings cannot mask real nesting.
    masked = b"[" + b'"]",[' * (MAX_JSON_DEPTH + 5) + b"1" + b"]" * (MAX_JSON_DEPTH + 6)
    assert too_deep(masked)
