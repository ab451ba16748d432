"""The doors that run the agent, as a client drives them: one table for the door-parity test.

A door is a name (the `door` label of `agent_turns_total`) and its forms: each route (JSON or
streamed) a client runs a turn through. A form builds the raw request of a `Turn`; its door
reads the answer (`Answer`) in its own shape: OpenAI's `{"error": {...}}` on `/v1` and
`/agent`, a JSON-RPC result with `isError` (`Error (<code>): ...`) on `/mcp`. Raw httpx: the
bytes on the wire are the point (a refusal must come before any streamed byte).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

MODEL = "m"
"""The alias of the parity apps (one fake provider)."""


@dataclass(frozen=True)
class Turn:
    """What one request sends: the caller's key, the user's messages, and its thread."""

    key: str
    messages: tuple[str, ...] = ("hi",)
    thread: str | None = None
    """The door's thread handle: a thread id (`X-Thread-Id` on `/v1/chat/completions`, the
    door's own field elsewhere), or on `/v1/responses` the id of the response to continue."""


@dataclass(frozen=True)
class Request:
    """A raw request of a form."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    """What a door answered, read in its own shape.

    Attributes:
        status: The HTTP status.
        ok: A completed turn (no error, neither before nor within a stream).
        code: The error's code (OpenAI `error.code`, the MCP tool error's code, or JSON-RPC's
            error code as text); None when ok.
        message: The error's message ("" when ok).
        json_refusal: Refused with a JSON body, so before any streamed byte.
        headers: The response's headers.
        raw: The body as received.
    """

    status: int
    ok: bool
    code: str | None
    message: str
    json_refusal: bool
    headers: httpx.Headers
    raw: bytes


Reader = Callable[[httpx.Response, bytes], Answer]


@dataclass(frozen=True)
class Form:
    """One route (JSON or streamed) through which a door runs a turn."""

    name: str
    """`door route` as the table shows it, e.g. `chat stream`."""
    path: str
    streams: bool
    build: Callable[[Turn], Request]
    threads: bool = True
    """It runs on the thread the turn names; False: a stateless form of a door with threads
    (the thread-id and busy-thread checks do not apply to it)."""
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Guard -> why it does not apply to this form (the door's other forms are checked)."""


@dataclass(frozen=True)
class Door:
    """A door: its forms, how it reads an answer, and the guards that do not apply to it."""

    name: str
    forms: tuple[Form, ...]
    read: Reader
    thread_ids: bool
    """It takes a thread id from the client (`invalid_thread_id` applies)."""
    tool_errors: bool = False
    """It answers what the service refuses as an MCP tool error (HTTP 200, `isError`), not as
    an HTTP error (but for what the HTTP edge refuses before the door reads the request)."""
    response_threads: bool = False
    """Its thread is a stored response's, continued with `previous_response_id`."""
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Guard -> why it does not apply to this door."""
    holds_with: str | None = None
    """The form that holds a thread busy (one that stops its run when its client leaves);
    None: the first."""

    @property
    def holder(self) -> Form:
        """The form that holds a thread busy in the busy-thread check."""
        return next(f for f in self.forms if self.holds_with in (None, f.name))

    @property
    def paths(self) -> set[str]:
        """The routes of its forms."""
        return {form.path for form in self.forms}


def bearer(key: str) -> dict[str, str]:
    """The `Authorization` header of a key."""
    return {"authorization": f"Bearer {key}"}


# --- reading answers -----------------------------------------------------------------------


def sse_events(raw: bytes) -> list[tuple[str | None, Any]]:
    """The (event name, data) pairs of an event stream; data parsed as JSON when it is."""
    events: list[tuple[str | None, Any]] = []
    for block in re.split(rb"\r?\n\r?\n", raw):
        name: str | None = None
        data: list[str] = []
        for line in block.decode("utf-8", "replace").splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if name is None and not data:
            continue
        text = "\n".join(data)
        try:
            events.append((name, json.loads(text)))
        except ValueError:
            events.append((name, text))
    return events


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _is_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")


def _stream_error(events: list[tuple[str | None, Any]]) -> dict[str, Any] | None:
    """The error an event stream ended with (chat, completions, responses, LangServe)."""
    for name, data in events:
        if name == "error":
            return data if isinstance(data, dict) else {"message": str(data)}
        if isinstance(data, dict):
            if isinstance(data.get("error"), dict) and data.get("type") != "response.completed":
                return dict(data["error"])
            if data.get("type") in ("error", "response.failed"):
                return data
    return None


def openai_reader(response: httpx.Response, raw: bytes) -> Answer:
    """An answer of `/v1` or `/agent`: OpenAI's error shape, or a JSON or streamed success."""

    def answer(ok: bool, code: Any = None, message: Any = "") -> Answer:
        return Answer(
            response.status_code,
            ok,
            None if code is None else str(code),
            str(message or ""),
            response.status_code != 200 and _is_json(response),
            response.headers,
            raw,
        )

    if response.status_code != 200:
        body = _json(raw)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return answer(False, error.get("code"), error.get("message"))
        return answer(False, f"http_{response.status_code}", raw[:200])
    if _is_json(response):
        return answer(True)
    error = _stream_error(sse_events(raw))
    if error is None:
        return answer(True)
    return answer(False, error.get("code") or error.get("type") or "stream_error", error)


_TOOL_ERROR = re.compile(r"^Error \((?P<code>[a-z_]+)\): (?P<message>.*)$", re.DOTALL)


def mcp_reader(response: httpx.Response, raw: bytes) -> Answer:
    """An answer of `/mcp`: a JSON-RPC response (in an event stream), or an HTTP refusal.

    An HTTP refusal's `error` is read as on the other doors (OpenAI's shape, or JSON-RPC's
    `{"code": -32600, "message": ...}`).
    """
    if response.status_code != 200:
        return openai_reader(response, raw)
    messages = [data for _, data in sse_events(raw) if isinstance(data, dict)]
    if _is_json(response):
        messages = [_json(raw)]
    reply = next((m for m in messages if isinstance(m, dict) and "id" in m), None)
    if reply is None:
        return Answer(200, False, "no_reply", raw[:200].decode(), False, response.headers, raw)
    if "error" in reply:
        error = reply["error"]
        return Answer(
            200, False, str(error["code"]), error["message"], False, response.headers, raw
        )
    result = reply["result"]
    if not result.get("isError"):
        return Answer(200, True, None, "", False, response.headers, raw)
    text = "".join(part.get("text", "") for part in result.get("content", []))
    matched = _TOOL_ERROR.match(text)
    code = matched["code"] if matched else "tool_error"
    message = matched["message"] if matched else text
    return Answer(200, False, code, message, False, response.headers, raw)


def graph_api_reader(response: httpx.Response, raw: bytes) -> Answer:
    """An answer of the LangGraph API door: `{"detail", "code"}` refusals, `event: error` in a
    stream, `__error__` in a waited run's values (what the HTTP edge refuses: OpenAI's shape)."""

    def answer(ok: bool, code: Any = None, message: Any = "") -> Answer:
        refused = response.status_code >= 400 and _is_json(response)
        text = str(message or "")
        return Answer(response.status_code, ok, None if code is None else str(code), text,
                      refused, response.headers, raw)  # fmt: skip

    body = _json(raw) if _is_json(response) else None
    if response.status_code >= 400:
        if isinstance(body, dict) and "detail" in body:
            return answer(False, body.get("code") or f"http_{response.status_code}", body["detail"])
        return openai_reader(response, raw)
    if isinstance(body, dict) and isinstance(body.get("__error__"), dict):
        return answer(False, body["__error__"].get("error"), body["__error__"].get("message"))
    if body is not None:
        return answer(True)
    error = next((data for name, data in sse_events(raw) if name == "error"), None)
    if isinstance(error, dict):
        return answer(False, error.get("error") or "stream_error", error.get("message"))
    return answer(True)


# --- the forms -----------------------------------------------------------------------------


def _thread_header(turn: Turn) -> dict[str, str]:
    """`X-Thread-Id`, percent-encoded UTF-8 as the door reads it (`server.turns.threads`)."""
    if turn.thread is None:
        return {}
    return {"x-thread-id": quote(turn.thread, safe="")}


def _chat(stream: bool) -> Callable[[Turn], Request]:
    def build(turn: Turn) -> Request:
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": [{"role": "user", "content": text} for text in turn.messages],
            "stream": stream,
        }
        headers = {**bearer(turn.key), **_thread_header(turn)}
        return Request("/v1/chat/completions", body, headers)

    return build


def _completions(stream: bool) -> Callable[[Turn], Request]:
    def build(turn: Turn) -> Request:
        prompt = turn.messages[0] if len(turn.messages) == 1 else list(turn.messages)
        body = {"model": MODEL, "prompt": prompt, "stream": stream}
        return Request("/v1/completions", body, bearer(turn.key))

    return build


def _responses(stream: bool) -> Callable[[Turn], Request]:
    def build(turn: Turn) -> Request:
        body: dict[str, Any] = {
            "model": MODEL,
            "input": [{"role": "user", "content": text} for text in turn.messages],
            "stream": stream,
        }
        if turn.thread is not None:
            body["previous_response_id"] = turn.thread
        return Request("/v1/responses", body, bearer(turn.key))

    return build


def _agent_input(turn: Turn) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text} for text in turn.messages]}


def _agent_config(turn: Turn) -> dict[str, Any]:
    if turn.thread is None:
        return {}
    return {"configurable": {"thread_id": turn.thread}}


def _agent(route: str) -> Callable[[Turn], Request]:
    def build(turn: Turn) -> Request:
        if route == "batch":
            body: dict[str, Any] = {"inputs": [_agent_input(turn)], "config": _agent_config(turn)}
        else:
            body = {"input": _agent_input(turn), "config": _agent_config(turn)}
        return Request(f"/agent/{route}", body, bearer(turn.key))

    return build


MCP_ACCEPT = {"accept": "application/json, text/event-stream"}


def _mcp(turn: Turn) -> Request:
    arguments: dict[str, Any] = {"message": "\n".join(turn.messages)}
    if turn.thread is not None:
        arguments["thread_id"] = turn.thread
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "chat", "arguments": arguments},
    }
    return Request("/mcp", body, {**bearer(turn.key), **MCP_ACCEPT})


def _graph_run(route: str, *, stateless: bool = False) -> Callable[[Turn], Request]:
    """A run of the LangGraph API door: on the turn's thread (created when new), or stateless."""

    def build(turn: Turn) -> Request:
        body = {
            "assistant_id": "agent",
            "input": _agent_input(turn),
            "context": {"model": MODEL},
            "if_not_exists": "create",
        }
        if stateless or turn.thread is None:
            return Request(f"/runs{route and '/' + route}", body, bearer(turn.key))
        path = f"/threads/{quote(turn.thread, safe='')}/runs{route and '/' + route}"
        return Request(path, body, bearer(turn.key))

    return build


STATELESS = "the legacy door is stateless: it takes no thread id and stores nothing"

DOORS: tuple[Door, ...] = (
    Door(
        "chat",
        (
            Form("chat json", "/v1/chat/completions", False, _chat(False)),
            Form("chat stream", "/v1/chat/completions", True, _chat(True)),
        ),
        openai_reader,
        thread_ids=True,
    ),
    Door(
        "completions",
        (
            Form("completions json", "/v1/completions", False, _completions(False)),
            Form("completions stream", "/v1/completions", True, _completions(True)),
        ),
        openai_reader,
        thread_ids=False,
        not_applicable={
            "max_messages": "a prompt is one user message, not a conversation: each prompt is "
            "a run of its own, and MAX_COMPLETION_CHOICES bounds the runs of a request",
            "thread_id": STATELESS,
            "busy_thread": f"{STATELESS}, so there is no thread to be busy",
        },
    ),
    Door(
        "responses",
        (
            Form("responses json", "/v1/responses", False, _responses(False)),
            Form("responses stream", "/v1/responses", True, _responses(True)),
        ),
        openai_reader,
        thread_ids=False,
        response_threads=True,
        not_applicable={
            "thread_id": "the Responses door takes no thread id from the client: a stored "
            "response's thread is named after its server-made id and continued with "
            "previous_response_id (an unknown one is a 404)",
        },
    ),
    Door(
        "mcp",
        (Form("mcp chat", "/mcp", False, _mcp),),
        mcp_reader,
        thread_ids=True,
        tool_errors=True,
        not_applicable={
            "max_messages": "the chat tool takes exactly one message (its `message` "
            "argument), and MAX_MESSAGES is at least 1",
        },
    ),
    Door(
        "agent",
        tuple(
            Form(f"agent {route}", f"/agent/{route}", route.startswith("stream"), _agent(route))
            for route in ("invoke", "batch", "stream", "stream_events", "stream_log")
        ),
        openai_reader,
        thread_ids=True,
        holds_with="agent stream",
    ),
    Door(
        "langgraph",
        (
            Form(
                "langgraph stream", "/threads/{thread_id}/runs/stream", True, _graph_run("stream")
            ),
            Form("langgraph wait", "/threads/{thread_id}/runs/wait", False, _graph_run("wait")),
            Form(
                "langgraph stateless stream",
                "/runs/stream",
                True,
                _graph_run("stream", stateless=True),
                threads=False,
            ),
            Form(
                "langgraph stateless wait",
                "/runs/wait",
                False,
                _graph_run("wait", stateless=True),
                threads=False,
            ),
            Form(
                "langgraph background",
                "/threads/{thread_id}/runs",
                False,
                _graph_run(""),
                not_applicable={
                    "disconnect": "a background run outlives the request that started it, by "
                    "design (LangGraph's POST /threads/{id}/runs answers at once); "
                    "POST .../runs/{run_id}/cancel stops it",
                },
            ),
            Form(
                "langgraph stateless background",
                "/runs",
                False,
                _graph_run("", stateless=True),
                threads=False,
                not_applicable={
                    "disconnect": "a background run outlives the request that started it, by "
                    "design (LangGraph's POST /runs answers at once); "
                    "POST /threads/{its thread_id}/runs/{run_id}/cancel stops it",
                },
            ),
        ),
        graph_api_reader,
        thread_ids=True,
    ),
)
"""Every door that runs the agent, by the name of its `door` metric label."""

DOOR_BY_NAME = {door.name: door for door in DOORS}

ENROLLED_PATHS = {path for door in DOORS for path in door.paths}
"""The routes the table drives turns through."""


async def send(client: httpx.AsyncClient, door: Door, form: Form, turn: Turn) -> Answer:
    """Send one turn through a form and read the whole answer."""
    request = form.build(turn)
    async with client.stream(
        "POST", request.path, json=request.body, headers=request.headers
    ) as response:
        raw = await response.aread()
    return door.read(response, raw)


async def send_bytes(
    client: httpx.AsyncClient, door: Door, form: Form, turn: Turn, content: Any
) -> Answer:
    """Send a form's request with `content` as its body (bytes, or an iterator: chunked)."""
    request = form.build(turn)
    headers = {**request.headers, "content-type": "application/json"}
    async with client.stream("POST", request.path, content=content, headers=headers) as response:
        raw = await response.aread()
    return door.read(response, raw)
