"""A minimal HTTP/1.1 keep-alive client for the load generator.

One request at a time per connection, JSON or SSE answers, timed to the first content
token.

The openai SDK and httpx spend around a millisecond of CPU per request, which at C=32 on one
core would make the load generator, not the target, the bottleneck. This client writes
prebuilt request bytes and reads the answer with asyncio streams: `Content-Length` or
chunked bodies, SSE events split on blank lines, `[DONE]` as the end of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "Connection", "ProtocolError", "build_request", "sse_content"]


class ProtocolError(Exception):
    """The answer was not what an OpenAI-compatible server sends."""


@dataclass(frozen=True)
class Answer:
    """One exchange, as the client saw it.

    Attributes:
        status: HTTP status code.
        latency_ms: From writing the request to the end of the answer.
        ttft_ms: From writing the request to the first non-empty content delta (streams).
        content: The assistant text (message content, or the stream's deltas joined).
        body: The raw body of a non-streamed answer (kept for error reports).
    """

    status: int
    latency_ms: float
    ttft_ms: float | None
    content: str
    body: bytes = b""


def build_request(
    host: str,
    port: int,
    path: str,
    payload: Mapping[str, Any] | bytes,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of a `POST` of `payload` as JSON (keep-alive, HTTP/1.1)."""
    if isinstance(payload, bytes):
        body = payload
    else:
        body = json.dumps(payload, separators=(",", ":")).encode()
    extra = dict(headers or {})
    if not any(name.lower() == "authorization" for name in extra):
        extra["Authorization"] = "Bearer bench"
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: */*",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in extra.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def sse_content(event: bytes) -> tuple[str, bool]:
    """The content delta of one SSE event of a chat completion stream, and whether it ends.

    The second value is True for the final `[DONE]` event.

    Raises:
        ProtocolError: A `data:` line that is not JSON (nor `[DONE]`).
    """
    text: list[str] = []
    for line in event.split(b"\n"):
        if not line.startswith(b"data:"):
            continue  # comments (": ping"), `event:` and `id:` lines
        data = line[5:].strip()
        if data == b"[DONE]":
            return "".join(text), True
        try:
            chunk = json.loads(data)
        except ValueError as error:
            raise ProtocolError(f"SSE data is not JSON: {data[:200]!r}") from error
        for choice in chunk.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if isinstance(piece, str):
                text.append(piece)
    return "".join(text), False


class Connection:
    """One keep-alive connection to `host:port`; `exchange` sends one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reader, self._writer = reader, writer
        return self._reader, self._writer

    async def close(self) -> None:
        """Close the connection (a later `exchange` opens a new one)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the peer may have gone: closing is all we want
                await writer.wait_closed()

    async def exchange(self, request: bytes, *, stream: bool) -> Answer:
        """Send `request` (from `build_request`) and read the whole answer.

        Raises:
            ProtocolError: A malformed answer, or a stream without `[DONE]`.
            OSError, asyncio.IncompleteReadError: The connection failed (it is closed).
        """
        reader, writer = await self._open()
        start = time.perf_counter()
        done = keep_alive = False
        try:
            writer.write(request)
            status, length, chunked, keep_alive = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            if chunked:
                answer = await self._read_chunked(reader, start, status, stream=stream)
            else:
                body = await reader.readexactly(length) if length else b""
                answer = _whole(status, body, start, stream=stream)
            done = True
        finally:
            # Closed unless the whole answer was read and the server keeps the connection.
            if not (done and keep_alive):
                await self.close()
        return answer

    @staticmethod
    async def _read_chunked(
        reader: asyncio.StreamReader, start: float, status: int, *, stream: bool
    ) -> Answer:
        if not stream or status != 200:
            body = b"".join([chunk async for chunk in _chunks(reader)])
            return _whole(status, body, start, stream=stream)
        pending = b""
        text: list[str] = []
        ttft: float | None = None
        done = False
        async for chunk in _chunks(reader):
            pending += chunk
            while not done:
                cut = _event_end(pending)
                if cut < 0:
                    break
                event, pending = pending[:cut], pending[cut:].lstrip(b"\r\n")
                piece, done = sse_content(event.replace(b"\r\n", b"\n"))
                if piece:
                    if ttft is None:
                        ttft = (time.perf_counter() - start) * 1000
                    text.append(piece)
        if not done:
            raise ProtocolError("the stream ended without data: [DONE]")
        latency = (time.perf_counter() - start) * 1000
        return Answer(status, latency, ttft, "".join(text))


def _event_end(buffer: bytes) -> int:
    """Index just past the first complete SSE event in `buffer` (-1: none yet)."""
    ends = [i for i in (buffer.find(b"\n\n"), buffer.find(b"\r\n\r\n")) if i >= 0]
    return min(ends) if ends else -1


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The chunks of a chunked transfer-encoded body (trailers are skipped)."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


def _parse_head(head: bytes) -> tuple[int, int, bool, bool]:
    """Status, Content-Length, whether chunked, and whether the connection stays open."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0]!r}")
    status = int(parts[1])
    length, chunked, keep_alive = 0, False, parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep_alive = value != "close"
    return status, length, chunked, keep_alive


def _whole(status: int, body: bytes, start: float, *, stream: bool) -> Answer:
    latency = (time.perf_counter() - start) * 1000
    if status != 200:
        return Answer(status, latency, None, "", body)
    if stream:
        # A stream sent with Content-Length (some servers buffer it): parse it in one go.
        text: list[str] = []
        done = False
        for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
            piece, done = sse_content(event)
            text.append(piece)
            if done:
                break
        if not done:
            raise ProtocolError("the stream ended without data: [DONE]")
        return Answer(status, latency, latency, "".join(text), body)
    try:
        message = json.loads(body)["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ProtocolError(f"not a chat completion: {body[:200]!r}") from error
    content = message.get("content")
    return Answer(status, latency, None, content if isinstance(content, str) else "", body)
