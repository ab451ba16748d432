"""Bounds on what a client may hold: the size of a request head, and the time to send it all.

uvicorn waits for a request's head (its request line and headers) and for its body as long as
the client likes, and its httptools parser takes any size of head: a client that sends a
header a byte a second, or a body that never finishes, holds a connection (and its request's
task) forever, and 5 MB of headers are read and kept. `GuardedHttpProtocol` wraps uvicorn's
own HTTP protocol (httptools, or h11 without it) and bounds the three:

- a head over MAX_HEADER_BYTES is refused with 431 before the parser reads it (its end is
  looked for in the bytes as they come, across reads);
- a head not complete within HEADER_TIMEOUT seconds of its first byte (or of the connection
  opening: a connection that says nothing is closed too) ends the connection, with a 408;
- a body not complete within BODY_TIMEOUT seconds of its head ends the connection, with a 408
  when no response has begun (the request's run sees a disconnect and stops).

The errors are in OpenAI's shape, with `connection: close`. An idle keep-alive connection is
closed by uvicorn's own `timeout_keep_alive`. `server_options` gives uvicorn's `Config` these
bounds (`python -m server` and the tests' served apps both use it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, cast

from graph.errors import ErrorCode
from server.errors import error_body

if TYPE_CHECKING:
    from uvicorn import Config
    from uvicorn.server import ServerState

    from server.settings import Settings

__all__ = ["GuardedHttpProtocol", "HttpLimits", "guarded_protocol", "limits_of", "server_options"]

_HEAD_END = b"\r\n\r\n"
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True)
class HttpLimits:
    """The bounds (see the module docstring); the defaults are the settings' defaults."""

    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0


class _Cycle(Protocol):
    """What the guard reads of uvicorn's request-response cycle (h11's and httptools')."""

    more_body: bool
    response_started: bool
    response_complete: bool


class _Inner(Protocol):
    """What the guard uses of uvicorn's HTTP protocol, besides `asyncio.Protocol`'s methods."""

    cycle: _Cycle | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def eof_received(self) -> bool | None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


class GuardedHttpProtocol(asyncio.Protocol):
    """uvicorn's HTTP/1.1 protocol for one connection, with the bounds of `limits`.

    uvicorn builds one per connection, as it builds its own (`Config(http=...)`); the inner
    protocol does all the HTTP, this one only watches the bytes and the clock.
    """

    limits: ClassVar[HttpLimits] = HttpLimits()
    inner: ClassVar[str] = "auto"
    """uvicorn's HTTP implementation inside: `auto` (httptools when installed, else h11),
    `h11` or `httptools`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        from uvicorn.config import HTTP_PROTOCOLS
        from uvicorn.importer import import_from_string

        inner_class = import_from_string(HTTP_PROTOCOLS[self.inner])
        inner = inner_class(
            config=config, server_state=server_state, app_state=app_state, _loop=_loop
        )
        self._inner = cast(_Inner, inner)
        self._loop = _loop or asyncio.get_event_loop()
        self._transport: asyncio.Transport | None = None
        self._phase: Literal["head", "body"] = "head"
        self._head = 0
        """Bytes of the current request head received so far."""
        self._tail = b""
        """The last bytes of the head so far, to find its end split across two reads."""
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol, passed on to uvicorn's protocol ----------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the clock: a connection that never sends a head is closed too."""
        self._transport = cast(asyncio.Transport, transport)
        self._inner.connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        """Count the head's bytes, then let uvicorn parse them; follow the request's phase."""
        if self._phase == "head" and not self._take_head(data):
            return
        before = self._inner.cycle
        self._inner.data_received(data)
        transport = self._transport
        if transport is None or transport.get_protocol() is not self:
            self._cancel()  # upgraded (another protocol reads now) or closed
            return
        cycle = self._inner.cycle
        if cycle is not None and cycle is not before:  # a head came complete
            self._head, self._tail = 0, b""
            self._cancel()
            if cycle.more_body:
                self._phase = "body"
                self._arm(self.limits.body_timeout, self._body_timed_out)
            else:
                self._phase = "head"
        elif self._phase == "body" and cycle is not None and not cycle.more_body:
            self._phase = "head"
            self._cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock; uvicorn ends the request (its run sees a disconnect)."""
        self._cancel()
        self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        """As uvicorn decides (it closes)."""
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        """Flow control, uvicorn's."""
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Flow control, uvicorn's."""
        self._inner.resume_writing()

    # --- the bounds ----------------------------------------------------------------------------

    def _take_head(self, data: bytes) -> bool:
        """Count `data` into the head; False (and a 431 sent) when the head gets too large."""
        if self._head == 0 and self._timer is None:
            self._arm(self.limits.header_timeout, self._head_timed_out)  # its first byte
        window = self._tail + data
        end = window.find(_HEAD_END)
        size = self._head + (len(data) if end == -1 else end + len(_HEAD_END) - len(self._tail))
        if size > self.limits.max_header_bytes:
            limit = self.limits.max_header_bytes
            self._refuse(
                431,
                f"The request line and headers are over {limit} bytes (MAX_HEADER_BYTES).",
                ErrorCode.REQUEST_HEADERS_TOO_LARGE,
            )
            return False
        if end == -1:
            self._head, self._tail = size, window[-(len(_HEAD_END) - 1) :]
        return True

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._phase != "head":
            return
        cycle = self._inner.cycle
        if self._head == 0 or (cycle is not None and not cycle.response_complete):
            self._close()  # nothing sent yet, or a response is still being written
            return
        seconds = self.limits.header_timeout
        message = f"The request's headers did not arrive within {seconds:g} s (HEADER_TIMEOUT)."
        self._refuse(408, message, ErrorCode.REQUEST_TIMEOUT)

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self._inner.cycle
        if self._phase != "body" or cycle is None:
            return
        if cycle.response_started:
            self._close()  # answered already, or answering: nothing more can be said
            return
        seconds = self.limits.body_timeout
        message = f"The request's body did not arrive within {seconds:g} s (BODY_TIMEOUT)."
        self._refuse(408, message, ErrorCode.REQUEST_TIMEOUT)

    def _refuse(self, status: int, message: str, code: ErrorCode) -> None:
        """Answer `status` in OpenAI's shape and close the connection."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        cycle = self._inner.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self._close()  # a response is being written: no second one in the middle of it
            return
        body = json.dumps(error_body(status, message, code=code)).encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"x-content-type-options: nosniff\r\nconnection: close\r\n\r\n"
        ) % (status, _REASONS[status], len(body))
        transport.write(head + body)
        self._close()

    def _close(self) -> None:
        self._cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._cancel()
        self._timer = self._loop.call_later(seconds, callback)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def guarded_protocol(limits: HttpLimits, inner: str = "auto") -> type[GuardedHttpProtocol]:
    """`GuardedHttpProtocol` with these limits (a class: uvicorn builds one per connection).

    `inner` names uvicorn's implementation inside (see `GuardedHttpProtocol.inner`).
    """
    if limits == GuardedHttpProtocol.limits and inner == GuardedHttpProtocol.inner:
        return GuardedHttpProtocol  # importable by name (`--reload` pickles its config)
    attributes = {"limits": limits, "inner": inner}
    return cast(
        type[GuardedHttpProtocol], type("GuardedHttpProtocol", (GuardedHttpProtocol,), attributes)
    )


def limits_of(settings: Settings) -> HttpLimits:
    """The bounds the settings ask for."""
    return HttpLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """The options of uvicorn's `Config` that apply the settings' bounds to every connection."""
    limits = limits_of(settings)
    return {
        "http": guarded_protocol(limits),
        "h11_max_incomplete_event_size": limits.max_header_bytes,  # h11's own, besides
    }
