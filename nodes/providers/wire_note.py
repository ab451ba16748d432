"""What a provider's HTTP response looked like, noted by a response hook on its client.

LangChain reports an answer that held no stream events (a plain JSON completion where an
event stream was asked for, an empty stream, a proxy's HTML error page sent with status 200)
only as `ValueError("No generation chunks were returned")`, and a body that is not JSON where
a completion was asked for as a `ValueError` of its own words. The note, filled by the pooled
HTTP client's response hook during the call, lets the error say what the provider sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

#: LangChain's words when a stream ended without a single chunk.
NO_CHUNKS_MESSAGE = "No generation chunks were returned"


class _Headers(Protocol):
    def get(self, key: str, default: None = None) -> str | None: ...


class _Response(Protocol):
    """What the hook reads of an `httpx`/`httpx2` response."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> _Headers: ...


@dataclass
class ResponseNote:
    """The last HTTP response of one provider call."""

    status: int | None = None
    content_type: str | None = None

    @property
    def json(self) -> bool:
        """Whether the response said it was JSON (False too when no response was noted)."""
        kind = (self.content_type or "").split(";", 1)[0].strip().lower()
        return kind == "application/json" or kind.endswith("+json")

    def describe_whole(self) -> str:
        """What the provider sent instead of a JSON completion, in words."""
        kind = (self.content_type or "").split(";", 1)[0].strip().lower()
        return (
            f"the provider answered with {kind or 'no content type'} (status {self.status}) "
            "instead of a JSON completion"
        )

    def describe(self) -> str:
        """What the provider sent instead of an event stream, in words for an error message."""
        if self.content_type is None:
            return "the provider's answer held no stream events"
        kind = self.content_type.split(";", 1)[0].strip().lower()
        if kind == "text/event-stream":
            return "the provider sent an event stream with no events"
        return (
            f"the provider answered a streamed request with {kind or 'no content type'} "
            f"(status {self.status}) instead of an event stream"
        )


_current: ContextVar[ResponseNote | None] = ContextVar("provider_response_note", default=None)


@contextmanager
def noting_response() -> Iterator[ResponseNote]:
    """A note that the response hook fills for calls made inside the block (same task)."""
    note = ResponseNote()
    token = _current.set(note)
    try:
        yield note
    finally:
        _current.reset(token)


async def note_response(response: _Response) -> None:
    """The `response` event hook of the providers' pooled HTTP clients."""
    note = _current.get()
    if note is not None:
        note.status = response.status_code
        note.content_type = response.headers.get("content-type")
