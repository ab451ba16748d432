"""The load generator's HTTP client: heads, chunked bodies, SSE events, TTFT."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.wire import Connection, ProtocolError, _parse_head, build_request, sse_content


def _chunk(content: str | None, *, role: bool = False) -> bytes:
    delta: dict[str, str] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def test_sse_content_reads_the_delta_and_done() -> None:
    assert sse_content(_chunk("Hel").rstrip(b"\n")) == ("Hel", False)
    assert sse_content(b": ping") == ("", False)
    assert sse_content(b"event: x\ndata: [DONE]") == ("", True)
    assert sse_content(_chunk(None, role=True).rstrip(b"\n")) == ("", False)
    with pytest.raises(ProtocolError, match="not JSON"):
        sse_content(b"data: {broken")


def test_head_parsing() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
    assert _parse_head(head) == (200, 12, False, False)
    chunked = b"HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n"
    assert _parse_head(chunked) == (409, 0, True, True)
    with pytest.raises(ProtocolError, match="status line"):
        _parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_build_request_carries_the_body_and_headers() -> None:
    raw = build_request("127.0.0.1", 8000, "/v1/x", {"a": 1}, {"X-Thread-Id": "t1"})
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"\r\nX-Thread-Id: t1" in head
    assert b"\r\nContent-Length: 7" in head
    assert body == b'{"a":1}'


async def _serve(reply: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _chunked(*pieces: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"


async def test_a_stream_split_across_chunks_is_joined_and_timed() -> None:
    events = _chunk("", role=True) + _chunk("Hello") + _chunk(" world") + b"data: [DONE]\n\n"
    # Cut the events at arbitrary places: an event may span chunks.
    reply = _chunked(events[:10], events[10:95], events[95:])
    server, port = await _serve(reply)
    async with server:
        conn = Connection("127.0.0.1", port)
        request = build_request("127.0.0.1", port, "/", b"{}")
        first = await conn.exchange(request, stream=True)
        second = await conn.exchange(request, stream=True)  # the same keep-alive connection
        await conn.close()
    assert first.content == "Hello world"
    assert second.content == "Hello world"
    assert first.ttft_ms is not None
    assert 0 < first.ttft_ms <= first.latency_ms


async def test_a_stream_without_done_is_a_protocol_error() -> None:
    server, port = await _serve(_chunked(_chunk("cut")))
    async with server:
        conn = Connection("127.0.0.1", port)
        with pytest.raises(ProtocolError, match="DONE"):
            await conn.exchange(build_request("127.0.0.1", port, "/", b"{}"), stream=True)
        await conn.close()


async def test_a_json_answer_and_an_error_status() -> None:
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "hi"}}]})
    ok = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
    server, port = await _serve(ok)
    async with server:
        conn = Connection("127.0.0.1", port)
        answer = await conn.exchange(build_request("127.0.0.1", port, "/", b"{}"), stream=False)
        await conn.close()
    assert (answer.status, answer.content, answer.ttft_ms) == (200, "hi", None)

    refused = b'HTTP/1.1 409 Conflict\r\nContent-Length: 6\r\n\r\n{"e":1}'[:-1]
    server, port = await _serve(refused)
    async with server:
        conn = Connection("127.0.0.1", port)
        answer = await conn.exchange(build_request("127.0.0.1", port, "/", b"{}"), stream=True)
        await conn.close()
    assert answer.status == 409
    assert answer.body == b'{"e":1'
