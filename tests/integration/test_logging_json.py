"""The JSON log of the real process (`python -m server`): request ids, no secrets, no bodies."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.fakes.mcp_server import McpServerProcess
from tests.fakes.service_process import ServiceProcess
from tests.helpers import chat_body

KEY = "sk-test-very-secret-key-4711"
THREAD = "raw-thread-id-9931"
QUESTION = "tell me about zebras and their stripes"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m server` with JSON logs on stderr, from a clean environment."""
    env = {"API_KEYS": json.dumps([KEY]), "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    with ServiceProcess(tmp_path, env, capture_stderr=True) as running:
        assert running.process is not None
        yield running.url, captured(running)


def captured(running: ServiceProcess) -> subprocess.Popen[str]:
    """The process of a service started with `capture_stderr`: its stderr is a text pipe."""
    assert running.process is not None
    return cast("subprocess.Popen[str]", running.process)


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


def test_at_debug_only_the_services_own_loggers_go_below_info_and_urls_lose_their_secrets(
    tmp_path: Path,
) -> None:
    marker = "s3cret-mcp-token-0427"  # in the URL's query string, never in the output
    server = McpServerProcess(authorization="Bearer another").start()  # 401 to the service
    try:
        env = {
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "debug",
            "MCP_SERVERS": json.dumps({"docs": {"url": f"{server.url}?token={marker}"}}),
        }
        with ServiceProcess(tmp_path, env, capture_stderr=True) as running:
            assert running.process is not None
            answered = httpx.post(
                f"{running.url}/v1/chat/completions",
                json=chat_body(("user", QUESTION)),
                headers={"X-Thread-Id": THREAD},  # checkpointed: aiosqlite writes the turn
                timeout=30,
            )
            assert answered.status_code == 200
            raw, records = stop_and_read_log(captured(running))
    finally:
        server.stop()

    assert [r for r in records if r["level"] == "debug" and r["logger"].startswith("server.")]
    assert not [r for r in records if r["logger"].split(".")[0] in ("aiosqlite", "httpcore")]
    assert not [r for r in records if r["level"] == "debug" and r["logger"].startswith("mcp")]
    assert "zebras" not in raw  # no checkpoint, no prompt, no answer in the log
    unreachable = [r for r in records if "401 Unauthorized" in r["message"]]
    assert unreachable  # the MCP server's failure is logged, with its URL...
    assert all(server.url in r["message"] for r in unreachable)
    assert marker not in raw  # ...without the token of its query string
