"""SIGTERM on a real `python -m server` process: unready, streams finish, exit code 0."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from tests.fakes.service_process import ServiceProcess
from tests.fakes.upstream import FakeUpstream, Reply
from tests.helpers import chat_body

WORDS = "one two three four five six seven eight nine ten"


@pytest.fixture
def service(primary: FakeUpstream, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = {
        "AGENT_MODELS": json.dumps({"m": ["openai:gpt-test"]}),
        "OPENAI_BASE_URL": primary.openai_base_url,
        "OPENAI_API_KEY": "k",
        "SHUTDOWN_GRACE_SECONDS": "20",
        "SHUTDOWN_DELAY_SECONDS": "1",
    }
    with ServiceProcess(tmp_path, env) as running:
        assert running.process is not None
        # Its stderr goes to a log file: the pipes it has are bytes.
        yield cast("subprocess.Popen[bytes]", running.process), running.url


def test_sigterm_lets_a_running_stream_finish_then_exits_zero(
    service: tuple[subprocess.Popen[bytes], str], primary: FakeUpstream
) -> None:
    process, url = service
    primary.default = Reply(WORDS, chunk_delay=0.3)  # ~3 s: well past the 1 s delay
    text: list[str] = []
    events: list[str] = []
    signalled = False
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json=chat_body(("user", "count"), model="m", stream=True),
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                continue
            events.append(line)
            if line == "data: [DONE]":
                continue
            delta = json.loads(line[len("data: ") :])["choices"]
            content = delta[0]["delta"].get("content") if delta else None
            if content:
                text.append(content)
                if not signalled:
                    process.send_signal(signal.SIGTERM)
                    signalled = True
                    # Within the shutdown delay the replica still answers, but is unready.
                    ready = httpx.get(f"{url}/ready", timeout=5)
                    assert ready.status_code == 503
                    assert ready.json()["draining"] is True
                    assert "draining" in ready.json()["degraded"]

    assert signalled
    assert "".join(text).split() == WORDS.split()
    assert events[-1] == "data: [DONE]"
    assert process.wait(30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=1)


def test_sigterm_lets_a_running_responses_stream_finish(
    service: tuple[subprocess.Popen[bytes], str], primary: FakeUpstream
) -> None:
    """The Responses door drains like /v1: the stream ends with `response.completed`."""
    process, url = service
    primary.default = Reply(WORDS, chunk_delay=0.3)
    text: list[str] = []
    kinds: list[str] = []
    completed: dict[str, object] = {}
    with httpx.stream(
        "POST",
        f"{url}/v1/responses",
        json={"model": "m", "input": "count", "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: ") :])
            kinds.append(event["type"])
            if event["type"] == "response.output_text.delta":
                text.append(event["delta"])
                if len(text) == 1:
                    process.send_signal(signal.SIGTERM)
            if event["type"] == "response.completed":
                completed = event["response"]

    assert "".join(text).split() == WORDS.split()
    assert kinds[-1] == "response.completed"
    assert completed["status"] == "completed"
    assert process.wait(30) == 0
