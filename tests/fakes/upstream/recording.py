"""What the fake upstream records of each request it receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake upstream received.

    Attributes:
        path: URL path, e.g. ``/v1/chat/completions``.
        headers: Request headers with lower-cased names.
        body: Parsed JSON body, or ``None`` when empty or not JSON.
        method: HTTP method.
    """

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    method: str = "POST"

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed response."""
        return bool(self.body and self.body.get("stream"))
