"""The JSON log of the real process (`python -m server`): request ids, no secrets, no bodies."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.server_thread import free_port
from tests.helpers import chat_body

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-very-secret-key-4711"
THREAD = "raw-thread-id-9931"
QUESTION = "tell me about zebras and their stripes"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m server` with JSON logs on stderr, from a clean environment."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SQLITE_PATH": str(tmp_path / "checkpoints.sqlite"),
        "API_KEYS": json.dumps([KEY]),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "LOAD_PLUGIN_TOOLS": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"the service did not start: {process.communicate()[0]}")
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def stop_and_read_log(process: subprocess.Popen[str]) -> tuple[str, list[dict[str, Any]]]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return err, [json.loads(line) for line in err.splitlines() if line.strip()]


def test_each_request_logs_one_json_access_line_without_secrets(
    service: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = service
    auth = {"Authorization": f"Bearer {KEY}"}

    given = httpx.post(
        f"{url}/v1/chat/completions",
        json=chat_body(("user", QUESTION)),
        headers={**auth, "X-Request-Id": "client-req-42", "X-Thread-Id": THREAD},
        timeout=30,
    )
    in_body = httpx.post(
        f"{url}/v1/chat/completions",
        json=chat_body(("user", QUESTION), metadata={"thread_id": "body-thread-5501"}),
        headers={**auth, "X-Request-Id": "client-req-43"},
        timeout=30,
    )
    fresh = httpx.get(f"{url}/v1/models", headers=auth)
    hostile = httpx.get(f"{url}/v1/models", headers={**auth, "X-Request-Id": "bad id\twith junk"})
    denied = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer sk-wrong-guess-0000"})

    assert given.status_code == 200
    assert in_body.status_code == 200
    assert given.headers["x-request-id"] == "client-req-42"
    generated = fresh.headers["x-request-id"]
    assert len(generated) == 32
    assert hostile.headers["x-request-id"] not in {"bad id\twith junk", generated}
    assert denied.status_code == 401

    raw, records = stop_and_read_log(process)  # every line parses as JSON, or this fails

    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    access = {r["request_id"]: r for r in records if r["logger"] == "server.access"}
    chat = access["client-req-42"]
    assert chat["method"] == "POST"
    assert chat["route"] == "/v1/chat/completions"
    assert chat["status"] == 200
    assert isinstance(chat["duration_ms"], float)
    assert chat["provider"]  # the provider that answered, filled in by the graph observer
    assert chat["output_tokens"] > 0
    assert chat["thread_hash"] == hashlib.sha256(THREAD.encode()).hexdigest()[:16]
    # A thread named in the body (not a header) is hashed once the graph runs on it.
    assert len(access["client-req-43"]["thread_hash"]) == 16
    assert "thread_hash" not in access[generated]
    assert access[generated]["route"] == "/v1/models"
    assert access[denied.headers["x-request-id"]]["status"] == 401
    # The start-up wait polled /health: successful probes stay out of the INFO log.
    assert not [r for r in access.values() if r["route"] == "/health"]
    for secret in (KEY, "sk-wrong-guess", THREAD, "body-thread-5501", "zebras", "Bearer"):
        assert secret not in raw
