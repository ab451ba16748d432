"""What the load generator sends: one request source per configuration of a series.

* `Stateless`: the same one-message request every time, no thread header;
* `FreshThreads`: a new `X-Thread-Id` per request (a new conversation each turn);
* `ThreadPool`: threads owned by one worker each, taken in turn, each request one new user
  message with the thread's `X-Thread-Id` (the client sends only the delta).

A worker owns its threads (thread i belongs to worker i mod C), so no thread ever has two
runs at once, which the service would refuse with 409 `thread_busy`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.wire import build_request

__all__ = ["Endpoint", "FreshThreads", "RequestSource", "Stateless", "ThreadPool", "chat_body"]

THREAD_HEADER = "X-Thread-Id"


@dataclass(frozen=True)
class Endpoint:
    """Where a series sends its requests.

    Attributes:
        name: The system under test, for the report.
        host: Its host.
        port: Its port.
        model: The model name to send.
        pid: Its process, for CPU and memory (None: not ours to measure).
        headers: Sent with every request (an API key).
        path: The chat completions path.
    """

    name: str
    host: str
    port: int
    model: str
    pid: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = "/v1/chat/completions"

    def request(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The bytes of one request of `body` to this endpoint."""
        return build_request(
            self.host, self.port, self.path, body, {**self.headers, **(headers or {})}
        )


def chat_body(model: str, text: str, *, stream: bool) -> bytes:
    """A chat completion request body with one user message."""
    payload = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
    return json.dumps(payload, separators=(",", ":")).encode()


class RequestSource(Protocol):
    """Gives each worker its next request."""

    stream: bool

    def next(self, worker: int) -> bytes:
        """The bytes of worker `worker`'s next request."""
        ...


class Stateless:
    """The same request every time, without a thread."""

    def __init__(self, endpoint: Endpoint, *, stream: bool, text: str = "hello") -> None:
        self.stream = stream
        self._request = endpoint.request(chat_body(endpoint.model, text, stream=stream))

    def next(self, worker: int) -> bytes:
        """The one request."""
        return self._request


class FreshThreads:
    """A new thread per request: `X-Thread-Id: <tag>-<uuid>`.

    Attributes:
        tag: Prefix of every thread id, to find the series' rows in the checkpointer.
        sent: How many threads were started.
    """

    def __init__(self, endpoint: Endpoint, tag: str, *, stream: bool) -> None:
        self.stream = stream
        self.tag = tag
        self.sent = 0
        self._endpoint = endpoint
        self._body = chat_body(endpoint.model, "hello", stream=stream)

    def next(self, worker: int) -> bytes:
        """A request on a thread nobody used yet."""
        self.sent += 1
        header = {THREAD_HEADER: f"{self.tag}-{uuid.uuid4().hex}"}
        return self._endpoint.request(self._body, header)


class ThreadPool:
    """Threads that grow by one user message per request, each owned by one worker.

    Args:
        endpoint: Where the requests go.
        threads: The thread ids (`X-Thread-Id`).
        concurrency: Workers sharing them; thread i belongs to worker i mod concurrency.
        turns: Turns of each thread so far, updated as requests are sent (shared with
            the caller, so that the next source over the same threads goes on counting).

    Attributes:
        turns: Turns of each thread so far (counting those sent by this source).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        threads: Sequence[str],
        concurrency: int,
        *,
        stream: bool,
        turns: dict[str, int] | None = None,
    ) -> None:
        if len(threads) < concurrency:
            raise ValueError(f"{len(threads)} threads cannot keep {concurrency} workers busy")
        self.stream = stream
        self.turns = turns if turns is not None else {}
        for thread in threads:
            self.turns.setdefault(thread, 0)
        self._endpoint = endpoint
        self._owned = [list(threads[w::concurrency]) for w in range(concurrency)]
        self._next = [0] * concurrency

    def next(self, worker: int) -> bytes:
        """The next turn of the worker's next thread."""
        owned = self._owned[worker]
        thread = owned[self._next[worker] % len(owned)]
        self._next[worker] += 1
        self.turns[thread] += 1
        text = f"turn {self.turns[thread]}: hello"
        body = chat_body(self._endpoint.model, text, stream=self.stream)
        return self._endpoint.request(body, {THREAD_HEADER: thread})
