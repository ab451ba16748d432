"""Servers of the LangGraph API for tests: `langgraph dev` (the reference) and the service.

How `langgraph dev` runs offline (a loopback port, nothing leaving the machine, a temporary
working directory) is `tests/langgraph_dev.py`, shared with the agent-chat-ui browser test.

Both servers search the web through `SearchGate`, a SearXNG stand-in whose answer to a chosen
query waits until the test releases it: a run that searches for that query stays `running`
for as long as the test needs a busy thread, with no clock involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Run, StreamPart
from starlette.types import Receive, Scope, Send

from tests.conftest import serve_app, settings_in
from tests.fakes.server_thread import ServedApp
from tests.langgraph_dev import langgraph_dev_server

HOLD_SECONDS = 60.0
"""Longest a held search waits (a test releases it long before; this bounds a failed one)."""

TARGETS = ("reference", "service")
"""`reference`: `langgraph dev` on this repository's graph; `service`: our LangGraph API door."""


def langgraph_dev(
    workdir: Path, env: Mapping[str, str] | None = None
) -> AbstractContextManager[str]:
    """`langgraph dev` on this repository's graph (`tests.langgraph_dev`); yields its URL."""
    return langgraph_dev_server(workdir, env)


@dataclass
class Hold:
    """One held query: `arrived` once the tool asked, the answer sent once `released`."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def reached(self) -> bool:
        """Wait (off the event loop) until the tool call reached the search engine."""
        return await anyio.to_thread.run_sync(self.arrived.wait, HOLD_SECONDS)


class SearchGate:
    """A SearXNG stand-in (`GET /search?q=…&format=json`) that holds chosen queries."""

    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}
        self.url = ""

    def hold(self, query: str) -> Hold:
        """Hold the answer to `query` until the returned hold is released."""
        self._holds[query] = hold = Hold()
        return hold

    def release_all(self) -> None:
        """Answer every held query (at the end, so no server waits on a finished test)."""
        for hold in self._holds.values():
            hold.released.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        query = parse_qs(scope["query_string"].decode()).get("q", [""])[0]
        hold = self._holds.get(query)
        if hold is not None:
            hold.arrived.set()
            await anyio.to_thread.run_sync(hold.released.wait, HOLD_SECONDS)
        result = {"title": "Gate", "url": "https://example.org/", "content": f"found {query}"}
        body = json.dumps({"results": [result]}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Api:
    """One server of the LangGraph API under test."""

    name: str
    url: str
    gate: SearchGate


@contextlib.contextmanager
def running(name: str, directory: Path) -> Iterator[Api]:
    """The target `name` (see `TARGETS`), searching through a gate of its own."""
    gate = SearchGate()
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(ServedApp(gate, lifespan="off"))
        stack.callback(gate.release_all)
        search = {"searxng_url": served.url, "searxng_timeout": HOLD_SECONDS}
        if name == "reference":
            env = {key.upper(): str(value) for key, value in search.items()}
            url = stack.enter_context(langgraph_dev(directory, env))
        else:
            app = serve_app(settings_in(directory, **search))
            stack.callback(app.stop)
            url = app.url
        yield Api(name, url, gate)


@pytest.fixture(scope="session", params=TARGETS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Each target once per session (`tests/integration/conftest.py` offers it)."""
    name = str(request.param)
    with running(name, tmp_path_factory.mktemp(name)) as target:
        yield target


def human(text: str) -> dict[str, Any]:
    """A run's input: one user message."""
    return {"messages": [{"type": "human", "content": text}]}


def last_text(output: Any) -> str:
    """The text of the last message of a state's values, which must be the model's."""
    assert isinstance(output, dict), output
    message = output["messages"][-1]
    assert message["type"] == "ai"
    return str(message["content"])


async def run_status(client: LangGraphClient, thread_id: str, run_id: str, *wanted: str) -> str:
    """Poll the run until its status is one of `wanted`; return it (fails after a minute)."""

    async def status() -> str:
        return str((await client.runs.get(thread_id, run_id))["status"])

    return await _polled(status, wanted, f"run {run_id}")


async def thread_status(client: LangGraphClient, thread_id: str, *wanted: str) -> str:
    """Poll the thread until its status is one of `wanted` (it may follow its run's a little
    later: the reference marks the run first)."""

    async def status() -> str:
        return str((await client.threads.get(thread_id))["status"])

    return await _polled(status, wanted, f"thread {thread_id}")


async def thread_gone(client: LangGraphClient, thread_id: str) -> int:
    """Poll the thread until reading it fails; the status of that answer (a 404 when gone)."""

    async def status() -> str:
        try:
            await client.threads.get(thread_id)
        except httpx.HTTPStatusError as error:
            return str(error.response.status_code)
        return "kept"

    return int(await _polled(status, ("404", "403", "400", "500"), f"thread {thread_id}"))


async def _polled(read: Callable[[], Awaitable[str]], wanted: tuple[str, ...], what: str) -> str:
    deadline = time.monotonic() + HOLD_SECONDS
    while (status := await read()) not in wanted:
        assert time.monotonic() < deadline, f"{what} still {status}, not {wanted}"
        await asyncio.sleep(0.02)
    return status


@contextlib.asynccontextmanager
async def held_run(
    api: Api, client: LangGraphClient, thread_id: str, **options: Any
) -> AsyncIterator[tuple[Run, Hold]]:
    """A background run that is `running`, in its web search, until the hold is released."""
    query = f"held-{uuid.uuid4().hex}"
    hold = api.gate.hold(query)
    try:
        run = await client.runs.create(
            thread_id, "agent", input=human(f"search for {query}"), **options
        )
        assert await hold.reached()
        await run_status(client, thread_id, run["run_id"], "running")
        yield run, hold
    finally:
        hold.released.set()


async def parts(stream: AsyncIterator[StreamPart]) -> list[StreamPart]:
    """Every part of a stream of the SDK, to its end."""
    return [part async for part in stream]


def events(received: list[StreamPart]) -> list[str]:
    """The event names of a stream's parts, in order."""
    return [part.event for part in received]


def error_body(error: httpx.HTTPStatusError, status: int) -> dict[str, Any]:
    """The JSON body of an error response, after checking its status."""
    response = error.response
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    return body


@pytest.fixture
async def client(api: Api) -> AsyncIterator[LangGraphClient]:
    """The SDK's async client on the target."""
    async with get_client(url=api.url) as sdk:
        yield sdk
