"""Slow and oversized clients over raw sockets: bounded head size, head time and body time.

The service is served as `python -m server` serves it (`server.edge.slow_clients.server_options`,
applied by the `serve` fixture), with small timeouts. Each test waits on the socket (for the
server's answer or its closing), never on the clock.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from server.app import create_app
from server.edge.slow_clients import guarded_protocol, limits_of, server_options
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply

Serve = Callable[[Settings], ServedApp]
PATIENCE = 30.0
"""Seconds a test waits for the server before it fails (far above every timeout set here)."""


@pytest.fixture(params=["httptools", "h11"])
def bounded(make_settings: SettingsFactory, request: pytest.FixtureRequest) -> Iterator[ServedApp]:
    """The service with small bounds, on each of uvicorn's HTTP implementations.

    httptools is what `auto` picks when it is installed (here, with the dev dependencies);
    the image has no httptools, so uvicorn runs h11 there.
    """
    settings = make_settings(header_timeout=0.5, body_timeout=0.5, max_header_bytes=4096)
    options = server_options(settings)
    options["http"] = guarded_protocol(limits_of(settings), inner=request.param)
    with ServedApp(create_app(settings), **options) as app:
        yield app


@contextlib.contextmanager
def connection(app: ServedApp) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=PATIENCE)
    try:
        yield sock
    finally:
        sock.close()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    received = b""
    sock.settimeout(PATIENCE)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def error_of(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower()
    return status, json.loads(body)["error"]


def test_a_header_sent_a_byte_at_a_time_is_cut_off_with_408(bounded: ServedApp) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Drip: " + b"x" * 10_000
    with connection(bounded) as sock:
        deadline = time.monotonic() + PATIENCE
        for byte in request:  # one byte, then wait (up to 0.05 s) for the server to react
            sock.send(bytes([byte]))
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
            assert time.monotonic() < deadline, "the server never cut the dripping header off"
        else:
            pytest.fail("the whole dripped request was taken")
        status, error = error_of(read_until_closed(sock))
    assert status == 408
    assert error["code"] == "request_timeout"
    assert "HEADER_TIMEOUT" in error["message"]
    assert httpx.get(f"{bounded.url}/health").status_code == 200  # the server is fine


def test_a_connection_that_says_nothing_is_closed(bounded: ServedApp) -> None:
    with connection(bounded) as sock:
        assert read_until_closed(sock) == b""


def test_five_megabytes_of_headers_are_refused(bounded: ServedApp) -> None:
    padding = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(5000))
    request = b"GET /health HTTP/1.1\r\nHost: big\r\n" + padding + b"\r\n"
    assert len(request) > 5_000_000
    with connection(bounded) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # the server stops reading long before the end
        answer = read_until_closed(sock)
    # 431 when it reaches this client before the reset of the unread bytes does.
    assert answer == b"" or error_of(answer)[0] == 431
    assert httpx.get(f"{bounded.url}/health").status_code == 200


def test_a_complete_head_over_the_limit_gets_431_and_one_under_it_is_served(
    bounded: ServedApp,
) -> None:
    def head_of(size: int) -> bytes:
        start = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: "
        return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"

    with connection(bounded) as sock:
        sock.sendall(head_of(4097))  # the whole head in one write, one byte over
        status, error = error_of(read_until_closed(sock))
    assert (status, error["code"]) == (431, "request_headers_too_large")
    assert "MAX_HEADER_BYTES" in error["message"]

    with connection(bounded) as sock:
        sock.sendall(head_of(4096).replace(b"HTTP/1.1", b"HTTP/1.0"))  # closes after it
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200 ")


def test_a_body_that_never_finishes_gets_408(bounded: ServedApp) -> None:
    body = json.dumps({"model": "offline", "messages": [{"role": "user", "content": "hi"}]})
    with connection(bounded) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body) + 100, body.encode())
        )
        status, error = error_of(read_until_closed(sock))
    assert status == 408
    assert error["code"] == "request_timeout"
    assert "BODY_TIMEOUT" in error["message"]


def test_an_answer_streamed_for_longer_than_the_timeouts_is_not_cut(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        make_settings(
            header_timeout=0.2,
            body_timeout=0.2,
            agent_models={"m": ["openai:gpt-test"]},
            openai_base_url=primary.openai_base_url,
        )
    )
    words = "one two three four five six"
    primary.script(Reply(words, chunk_delay=0.1))  # about 0.6 s of streaming
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "count"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == words
