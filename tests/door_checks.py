"""The door-parity checks: each guard's check of one form of a door (`tests.doors`).

`tests/integration/test_door_parity.py` runs them door x guard on two shared apps: `main`
(MAX_MESSAGES, MAX_REQUEST_BYTES, KEY_BUDGETS and an admin key as set here) and `limited`
(RATE_LIMIT_RPM=1). A check waits on conditions (a model call seen, a disconnect, a usage
line, polled), never on the clock, and holds when it runs again on the same app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nodes.providers.registry import Price
from server.auth import digest, key_id
from tests.doors import Answer, Door, Form, Turn, bearer, send, send_bytes
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply

GUARDS = (
    "rate_limit",
    "token_budget",
    "cost_budget",
    "max_messages",
    "body_limit",
    "thread_id",
    "busy_thread",
    "disconnect",
    "usage",
    "metrics",
)
"""The guards every door must apply (or say why not)."""

ADMIN = "sk-parity-admin"
MAX_MESSAGES = 3
MAX_BYTES = 32 * 1024
DOLLAR_A_TOKEN = Price(input_per_million=1e6, output_per_million=1e6)
COST_BUDGET = 0.5
"""Dollars: one turn at a dollar a token spends it."""
TIMEOUT = 15.0
"""Seconds a cell waits for a condition (a write, a model call) before it fails."""
LEAVE_TIMEOUT = 5.0
"""Seconds a cancelled run may take to drop its model call (milliseconds when it does)."""


def key(door: str, guard: str) -> str:
    """The API key of one cell."""
    return f"sk-parity-{door}-{guard}"


def id_of(api_key: str) -> str:
    """The key id `/admin/usage` and KEY_BUDGETS name a key by."""
    return key_id(digest(api_key))


@contextlib.asynccontextmanager
async def client(app: ServedApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of one app (its connections closed at the end)."""
    async with httpx.AsyncClient(base_url=app.url, timeout=TIMEOUT * 2) as http:
        yield http


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until `check` holds (polled), or fail saying `what` never happened."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what}: not within {TIMEOUT} s")
        await asyncio.sleep(0.02)


def requests_seen(upstream: FakeUpstream, count: int) -> Callable[[], Awaitable[bool]]:
    """A check: the provider has received `count` requests."""

    async def check() -> bool:
        return len(upstream.requests) >= count

    return check


async def disconnected(upstream: FakeUpstream, count: int, what: str) -> None:
    """Wait until the provider saw `count` requests abandoned (they were cancelled)."""
    seen = await asyncio.to_thread(upstream.wait_for_disconnects, count, LEAVE_TIMEOUT)
    assert seen, f"{what}: the provider's request was not cancelled ({upstream.disconnects})"


def assert_refused(door: Door, form: Form, answer: Answer, status: int, code: str) -> None:
    """Refused with `status` and `code` in the door's shape, before any streamed byte.

    On `/mcp` a refusal of the service is a tool error (HTTP 200, `isError`), except what the
    HTTP edge refuses before MCP reads the request (413).
    """
    edge = status == 413
    where = f"{form.name}: {answer.status} {answer.code} {answer.message[:300]!r}"
    assert not answer.ok, f"{where}: not refused"
    assert answer.code == code, where
    if door.tool_errors and not edge:
        assert answer.status == 200, where
        return
    assert answer.status == status, where
    assert answer.json_refusal, f"{where}: not a JSON refusal before any byte"


# --- the cells ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One door x guard: what its check uses."""

    door: Door
    guard: str
    upstream: FakeUpstream
    http: httpx.AsyncClient

    @property
    def key(self) -> str:
        """The cell's own API key."""
        return key(self.door.name, self.guard)

    def thread(self) -> str | None:
        """A fresh thread id when the door takes one."""
        return f"parity-{uuid.uuid4().hex[:12]}" if self.door.thread_ids else None

    def turn(self, *messages: str, thread: str | None = None) -> Turn:
        """A turn with the cell's key, on `thread` or a fresh one."""
        return Turn(self.key, messages or ("hi",), thread=thread or self.thread())

    async def send(self, form: Form, turn: Turn) -> Answer:
        """One turn through `form`."""
        return await send(self.http, self.door, form, turn)


async def refused_within(cell: Cell, form: Form, tries: int) -> Answer:
    """The first refused answer of up to `tries` turns, checked to have reached no provider."""
    for _ in range(tries):
        calls = len(cell.upstream.requests)
        answer = await cell.send(form, cell.turn())
        if not answer.ok:
            assert len(cell.upstream.requests) == calls, f"{form.name}: refused after a model call"
            return answer
    pytest.fail(f"{form.name}: {tries} turns in a row were all run")


async def check_rate_limit(cell: Cell, form: Form) -> None:
    """RATE_LIMIT_RPM=1: within three turns (a minute's boundary lets one more in) a 429."""
    answer = await refused_within(cell, form, 3)
    assert_refused(cell.door, form, answer, 429, "rate_limit_exceeded")
    if not cell.door.tool_errors:
        assert 1 <= int(answer.headers["retry-after"]) <= 120, form.name


async def check_budget(cell: Cell, form: Form, spent: str) -> None:
    """A key over its monthly budget: 429 `insufficient_quota`, and no model call."""
    answer = await refused_within(cell, form, 2)
    assert_refused(cell.door, form, answer, 429, "insufficient_quota")
    assert spent in answer.message, form.name
    if not cell.door.tool_errors:
        assert answer.headers["x-should-retry"] == "false", form.name


async def check_token_budget(cell: Cell, form: Form) -> None:
    """KEY_BUDGETS {"tokens": 1}: the first turn spends it."""
    await check_budget(cell, form, "of its 1 tokens")


async def check_cost_budget(cell: Cell, form: Form) -> None:
    """KEY_BUDGETS {"usd": 0.5} at a dollar a token: the first turn spends it."""
    await check_budget(cell, form, f"of its ${COST_BUDGET:.2f}")


async def check_max_messages(cell: Cell, form: Form) -> None:
    """One message more than MAX_MESSAGES: 400 `too_many_messages`, and no model call."""
    messages = [f"message {n}" for n in range(MAX_MESSAGES + 1)]
    answer = await cell.send(form, cell.turn(*messages))
    assert_refused(cell.door, form, answer, 400, "too_many_messages")
    assert cell.upstream.requests == []


async def check_body_limit(cell: Cell, form: Form) -> None:
    """A body over MAX_REQUEST_BYTES: 413, by its Content-Length or as it is read (chunked)."""
    turn = cell.turn("x" * MAX_BYTES)
    body = json.dumps(form.build(turn).body).encode()

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    for content in (body, chunked()):
        answer = await send_bytes(cell.http, cell.door, form, turn, content)
        assert_refused(cell.door, form, answer, 413, "request_too_large")
    assert cell.upstream.requests == []


async def check_thread_id(cell: Cell, form: Form) -> None:
    """A thread id too long, or with a bidirectional override: 400 `invalid_thread_id`."""
    if not form.threads:
        return  # a stateless form of a door with threads: it takes no thread id
    for bad in ("t" * 257, "right\u202eleft"):
        answer = await cell.send(form, cell.turn(thread=bad))
        assert_refused(cell.door, form, answer, 400, "invalid_thread_id")
    assert cell.upstream.requests == []


async def new_thread(cell: Cell) -> str:
    """A thread to hold busy: a fresh id, or on `/v1/responses` a stored response's id."""
    if not cell.door.response_threads:
        thread = cell.thread()
        assert thread is not None
        return thread
    answer = await cell.send(cell.door.forms[0], Turn(cell.key))
    assert answer.ok, answer.raw
    response_id: str = json.loads(answer.raw)["id"]
    return response_id


async def check_busy_thread(cell: Cell, form: Form) -> None:
    """While a slow turn holds a thread, a second turn on it: 409 before any byte.

    The holder is the door's `holder` form (one that stops its run when its client leaves),
    and leaves at the end.
    """
    if not form.threads:
        return  # a stateless form of a door with threads: no thread to be busy
    upstream = cell.upstream
    thread = await new_thread(cell)
    held = len(upstream.requests) + 1
    left = upstream.disconnects + 1
    upstream.script(Fault.hang(TIMEOUT * 2))
    holder = asyncio.create_task(cell.send(cell.door.holder, cell.turn(thread=thread)))
    try:
        await until(requests_seen(upstream, held), f"{form.name}: the holder's model call")
        answer = await cell.send(form, cell.turn("again", thread=thread))
        assert_refused(cell.door, form, answer, 409, "thread_busy")
        assert len(upstream.requests) == held, f"{form.name}: a model call while busy"
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
    await disconnected(upstream, left, f"{form.name}: the holder left")


async def thread_free(cell: Cell, form: Form, thread: str) -> None:
    """Wait until a turn on `thread` runs again (the run before it has let go of it)."""

    async def runs() -> bool:
        answer = await cell.send(form, cell.turn(thread=thread))
        assert answer.ok or answer.code == "thread_busy", f"{form.name}: {answer.raw[:300]!r}"
        return answer.ok

    await until(runs, f"{form.name}: the thread free again")


async def check_disconnect(cell: Cell, form: Form) -> None:
    """A client that leaves mid-turn: the provider's request is cancelled, the thread freed.

    The provider hangs only a little longer than a cancellation may take, so a run that is
    not cancelled ends soon after by itself (and frees its thread for the next check).
    """
    upstream = cell.upstream
    upstream.script(Fault.hang(LEAVE_TIMEOUT + 1))
    calls, left = len(upstream.requests) + 1, upstream.disconnects + 1
    thread = cell.thread()
    leaving = asyncio.create_task(cell.send(form, cell.turn(thread=thread)))
    await until(requests_seen(upstream, calls), f"{form.name}: the model call")
    leaving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await leaving
    cancelled = await asyncio.to_thread(upstream.wait_for_disconnects, left, LEAVE_TIMEOUT)
    if thread is not None:
        await thread_free(cell, form, thread)
    assert cancelled, f"{form.name}: the client left, the provider's request went on"


async def usage_tokens(http: httpx.AsyncClient, api_key: str) -> int:
    """The key's tokens this month, as `/admin/usage` reports them."""
    response = await http.get("/admin/usage", params={"key": id_of(api_key)}, headers=bearer(ADMIN))
    assert response.status_code == 200, response.text
    tokens: int = response.json()["total"]["total_tokens"]
    return tokens


async def check_usage(cell: Cell, form: Form) -> None:
    """A turn adds its provider's tokens (11 + 5) to the key's line of `/admin/usage`."""
    before = await usage_tokens(cell.http, cell.key)
    cell.upstream.script(Reply("counted", usage=(11, 5)))
    answer = await cell.send(form, cell.turn())
    assert answer.ok, f"{form.name}: {answer.raw[:300]!r}"

    async def counted() -> bool:
        return await usage_tokens(cell.http, cell.key) == before + 16

    await until(counted, f"{form.name}: 16 tokens in /admin/usage")


TURNS_METRIC = "agent_turns_total"


async def door_turns(http: httpx.AsyncClient, door: str) -> float | None:
    """`agent_turns_total` summed over outcomes for `door`; None when the metric is absent."""
    response = await http.get("/metrics", headers=bearer(ADMIN))
    assert response.status_code == 200, response.text
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    family = families.get(TURNS_METRIC.removesuffix("_total"))
    if family is None:
        return None
    samples = [s for s in family.samples if s.name == TURNS_METRIC]
    assert all("outcome" in s.labels for s in samples), samples
    return sum(s.value for s in samples if s.labels.get("door") == door)


async def check_metrics(cell: Cell, form: Form) -> None:
    """A turn counts one `agent_turns_total{door=<door>, outcome=...}`."""
    before = await door_turns(cell.http, cell.door.name)
    assert before is not None, f"/metrics has no {TURNS_METRIC} (the turn kit adds it)"
    answer = await cell.send(form, cell.turn())
    assert answer.ok, f"{form.name}: {answer.raw[:300]!r}"

    async def counted() -> bool:
        return await door_turns(cell.http, cell.door.name) == before + 1

    await until(counted, f"{form.name}: one more {TURNS_METRIC}{{door={cell.door.name}}}")


CHECKS: dict[str, Callable[[Cell, Form], Awaitable[None]]] = {
    "rate_limit": check_rate_limit,
    "token_budget": check_token_budget,
    "cost_budget": check_cost_budget,
    "max_messages": check_max_messages,
    "body_limit": check_body_limit,
    "thread_id": check_thread_id,
    "busy_thread": check_busy_thread,
    "disconnect": check_disconnect,
    "usage": check_usage,
    "metrics": check_metrics,
}
"""Each guard's check of one form of a door."""
