"""`make dev` (`python -m server --reload`): it serves, and a change of the code is served next.

The command is read from the Makefile (`make -n dev`) and run on a copy of graph/, nodes/ and
server/ in `tmp_path` (the checkout itself is never written); the copy is what the process
imports, so a change to it is a change of the code the worker runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.fakes.server_thread import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"Started server process \[(\d+)\]")
#: Appended to the copy's server/app.py: the next app has one route more.
CHANGE = """

_create_app = create_app


def create_app(settings: Settings | None = None) -> FastAPI:
    app = _create_app(settings)
    app.add_api_route("/dev-probe", lambda: {"reloaded": True})
    return app
"""
T = TypeVar("T")


def dev_arguments() -> list[str]:
    """What `make dev` runs after `python` (`exec env ... python -m server --reload`)."""
    shown = subprocess.run(
        ["make", "-n", "--no-print-directory", "dev"],  # noqa: S607 - make on PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    recipe = shown.stdout.strip().splitlines()[-1]
    assert " python " in recipe, recipe
    return recipe.split(" python ", 1)[1].split()


class DevProcess:
    """The dev command in its own process group, its output in a log file."""

    def __init__(self, workdir: Path, arguments: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "dev.log"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(workdir),
            "PYTHONPATH": str(workdir),
            "SQLITE_PATH": str(workdir / "checkpoints.sqlite"),
            "KNOWLEDGE_PATH": str(workdir / "knowledge.sqlite"),
            "LOAD_PLUGIN_TOOLS": "false",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "text",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, the Makefile's arguments
                [sys.executable, *arguments],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the reloader and its worker: one group to stop
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return [int(pid) for pid in STARTED.findall(self.log())]

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}{path}", timeout=5)
        except httpx.TransportError:
            return None

    def wait_for(
        self, what: str, found: Callable[[], T | None], *, timeout: float = 90, ended: bool = False
    ) -> T:
        """Poll until `found` returns something; fail with the log if the process ends first
        (unless it is expected to have `ended`) or the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            value = found()
            if value is not None:
                return value
            if (self.process.poll() is not None and not ended) or time.monotonic() > deadline:
                pytest.fail(f"{what}: not seen; the log:\n{self.log()}")
            time.sleep(0.2)  # synchronous polling in a test, not on an event loop

    def group_alive(self) -> list[str]:
        """The group's processes still running (from /proc; a zombie has ended)."""
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended while being read
                continue
            state, pgrp = fields[0], int(fields[2])
            if pgrp == self.process.pid and state != "Z":
                alive.append(stat.parent.name)
        return alive

    def kill_group(self) -> None:
        if self.group_alive():
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(30)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    for package in ("graph", "nodes", "server"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    running = DevProcess(tmp_path, dev_arguments())
    try:
        yield running
    finally:
        running.kill_group()


def _ok(response: httpx.Response | None) -> bool | None:
    return True if response is not None and response.status_code == 200 else None


def _json_if_ok(response: httpx.Response | None) -> object | None:
    return response.json() if response is not None and response.status_code == 200 else None


@pytest.mark.timeout(400)
def test_make_dev_serves_and_serves_the_changed_code_after_a_change(
    dev: DevProcess, tmp_path: Path
) -> None:
    dev.wait_for("/health answering", lambda: _ok(dev.get("/health")))
    first = dev.wait_for("the worker's start line", lambda: dev.worker_pids() or None)[0]
    watched = next(line for line in dev.log().splitlines() if "Will watch for changes" in line)
    assert all(repr(str(tmp_path / package)) in watched for package in ("graph", "nodes", "server"))
    probe = dev.get("/dev-probe")
    assert probe is not None
    assert probe.status_code == 404

    app_py = tmp_path / "server" / "app.py"
    app_py.write_text(app_py.read_text() + CHANGE)

    pids = dev.wait_for("a new worker", lambda: dev.worker_pids()[1:] or None)
    assert first not in pids  # a new process, not the old one carrying on
    changed = dev.wait_for(
        "the changed app's new route", lambda: _json_if_ok(dev.get("/dev-probe"))
    )
    assert changed == {"reloaded": True}
    assert "Reloading" in dev.log()

    # Ctrl+C's SIGINT, or a SIGTERM, to the reloader stops its worker too: nothing is left.
    dev.process.send_signal(signal.SIGTERM)
    dev.process.wait(60)
    dev.wait_for("the worker gone", lambda: not dev.group_alive() or None, ended=True)
