"""A scripted fake Ollama server (`POST /api/chat`, NDJSON streaming) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server_thread import ServedApp, StartStop

CREATED_AT = "2026-11-26T09:00:00.000000Z"


@dataclass(frozen=True)
class OllamaReply:
    """A successful answer: text, then tool calls (name, arguments)."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: tuple[int, int] = (7, 3)


@dataclass(frozen=True)
class OllamaError:
    """An error status with Ollama's `{"error": …}` body."""

    status: int
    message: str = "model runner has unexpectedly stopped"


OllamaStep = OllamaReply | OllamaError


class FakeOllama(StartStop):
    """Serves Ollama's chat API; steps are consumed one per request, FIFO."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: deque[OllamaStep] = deque()
        self._requests: list[dict[str, Any]] = []
        app = Starlette(routes=[Route("/api/chat", self._chat, methods=["POST"])])
        self.served = ServedApp(app)

    @property
    def base_url(self) -> str:
        """What OLLAMA_BASE_URL would be."""
        return self.served.url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat requests received so far."""
        with self._lock:
            return list(self._requests)

    def script(self, *steps: OllamaStep) -> None:
        """Queue the answers of the next requests."""
        with self._lock:
            self._steps.extend(steps)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._steps.clear()
            self._requests.clear()

    def start(self) -> Self:
        """Start serving."""
        self.served.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.served.stop()

    async def _chat(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        with self._lock:
            self._requests.append(body)
            step = self._steps.popleft() if self._steps else OllamaReply("ok")
        if isinstance(step, OllamaError):
            return JSONResponse({"error": step.message}, status_code=step.status)
        model = body.get("model", "fake")
        if body.get("stream", True):
            return StreamingResponse(_ndjson(step, model), media_type="application/x-ndjson")
        return JSONResponse(_final(step, model, whole=True))


def _message(content: str, calls: list[tuple[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"function": {"name": name, "arguments": args}} for name, args in calls
        ]
    return message


def _final(step: OllamaReply, model: str, *, whole: bool) -> dict[str, Any]:
    prompt, completion = step.usage
    return {
        "model": model,
        "created_at": CREATED_AT,
        "message": _message(step.text, step.tool_calls) if whole else _message(""),
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        "load_duration": 10,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": 100,
        "eval_count": completion,
        "eval_duration": 800,
    }


async def _ndjson(step: OllamaReply, model: str) -> AsyncIterator[bytes]:
    for word in step.text.split(" ") if step.text else []:
        part = {
            "model": model,
            "created_at": CREATED_AT,
            "message": _message(word + " "),
            "done": False,
        }
        yield (json.dumps(part) + "\n").encode()
    if step.tool_calls:
        part = {
            "model": model,
            "created_at": CREATED_AT,
            "message": _message("", step.tool_calls),
            "done": False,
        }
        yield (json.dumps(part) + "\n").encode()
    yield (json.dumps(_final(step, model, whole=False)) + "\n").encode()
