"""`make run` and `make dev` end with make: a signal sent to make's process alone stops the server.

GNU make passes SIGTERM on to its children but not SIGINT or SIGHUP (it expects a terminal to
have sent those to the whole process group); the Makefile's `SERVE` covers both. Each case runs
the checkout's Makefile (`install` skipped: `-o install`) in `tmp_path`, beside a link to the
checkout's `.venv`, so the server reads no `.env` and writes its SQLite files there; it is
started in a session of its own, and the test signals make's pid only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.server_thread import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; the watcher is Linux-only"),
    pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make"),
    pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs .venv"),
]


class MakeServe:
    """`make <target>` on a free port, in its own session (its pid is the group's id)."""

    def __init__(self, workdir: Path, target: str) -> None:
        (workdir / ".venv").symlink_to(ROOT / ".venv")
        self.port = free_port()
        self.log_path = workdir / "make.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOAD_PLUGIN_TOOLS": "false",
            "LOG_FORMAT": "text",
        }
        command = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-o", "install"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - make on PATH, fixed arguments
                [*command, target],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(
        self, what: str, done: Callable[[], bool], timeout: float, *, make_ends: bool = True
    ) -> None:
        """Poll until `done()`; fail with make's log when the time is up, or when make ended
        and was not expected to (`make_ends=False`)."""
        deadline = time.monotonic() + timeout
        while not done():
            ended = not make_ends and self.process.poll() is not None
            if ended or time.monotonic() > deadline:
                reason = "make ended first" if ended else f"not within {timeout:.0f} s"
                pytest.fail(f"{what}: {reason}; make's log:\n{self.log()}")
            time.sleep(0.2)  # synchronous polling in a test, not on an event loop

    def answers(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def port_taken(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def group_alive(self) -> list[str]:
        """The session's processes still running, with their command lines (zombies ended)."""
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):  # ended while being read
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid and fields[0] != "Z":
                    command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                    alive.append(f"{stat.parent.name}: {command.decode(errors='replace')}")
        return alive

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # all ended already
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str], MakeServe]]:
    started: list[MakeServe] = []

    def start(target: str) -> MakeServe:
        started.append(MakeServe(tmp_path, target))
        return started[-1]

    yield start
    for running in started:
        running.kill_group()


@pytest.mark.parametrize(
    ("target", "sig"),
    [
        ("run", signal.SIGTERM),
        ("run", signal.SIGINT),
        ("run", signal.SIGHUP),
        ("dev", signal.SIGINT),
    ],
    ids=["run-SIGTERM", "run-SIGINT", "run-SIGHUP", "dev-SIGINT"],
)
def test_a_signal_to_make_alone_stops_the_server_and_frees_the_port(
    serve: Callable[[str], MakeServe], target: str, sig: signal.Signals
) -> None:
    make = serve(target)
    make.wait_for("/health answering", make.answers, timeout=90, make_ends=False)

    os.kill(make.process.pid, sig)  # make's pid only, not its group

    make.wait_for("make ended", lambda: make.process.poll() is not None, timeout=40)
    make.wait_for("nothing of make's session left", lambda: not make.group_alive(), timeout=10)
    assert not make.port_taken()
