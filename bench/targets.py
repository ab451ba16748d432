"""The processes under load.

Spawned (pinned by `Pinning`), timed to their first answer, and stopped again.

A target is ready when it answers a chat completion, not merely `/health`: the time from
spawn to that answer is its cold start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import httpx

from bench.pinning import Pinning
from tests.fakes.server_thread import StartStop, free_port

__all__ = ["ROOT", "TargetProcess", "base_env", "start_together"]

ROOT = Path(__file__).resolve().parents[1]


def base_env(home: Path) -> dict[str, str]:
    """The environment every spawned process gets.

    The repository importable, nothing from our own environment (no stray settings, no
    keys), a private HOME.
    """
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }


class TargetProcess(StartStop):
    """One process under load: `command` on a free port, pinned to the target core.

    Args:
        name: For reports and the log file's name.
        command: The command; `{port}` in any argument is replaced by the port.
        env: Its whole environment (see `base_env`); PORT is added.
        workdir: Its working directory; its log goes to `<workdir>/<name>.log`.
        pinning: Where it runs.
        model: The model to ask for in the readiness request.
        headers: Headers every request to it needs (a key, say).
        startup_timeout: Seconds to wait for the first answer.
        python: The interpreter for a command starting with "python".
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, str],
        workdir: Path,
        pinning: Pinning,
        *,
        model: str = "bench",
        headers: Mapping[str, str] | None = None,
        startup_timeout: float = 120.0,
        python: str = sys.executable,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        argv = [arg.replace("{port}", str(self.port)) for arg in command]
        if argv and argv[0] == "python":
            argv[0] = python
        self._argv = argv
        self._pinning = pinning
        self._env = {**env, "PORT": str(self.port)}
        self._model = model
        self.headers = dict(headers or {})
        self._timeout = startup_timeout
        self._log: IO[bytes] | None = None
        self._began = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self.cold_start_s: float | None = None

    @property
    def pid(self) -> int:
        """The target's process id (taskset execs the command: the same pid)."""
        assert self.process is not None, f"{self.name} is not started"
        return self.process.pid

    def start(self) -> Self:
        """Spawn the process on the target core and wait for its first answered completion.

        Raises:
            RuntimeError: It exited, or did not answer in time (its log attached).
        """
        self.spawn(pinned=True)
        return self.wait_ready()

    def spawn(self, *, pinned: bool) -> None:
        """Start the process, on the target core or on any.

        `pinned=False` starts it on any core (see `start_together`).
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._began = time.perf_counter()
        command = self._pinning.target_command(self._argv) if pinned else self._argv
        self.process = subprocess.Popen(  # noqa: S603 - commands built by the benchmark
            command,
            cwd=self.workdir,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> Self:
        """Wait for the spawned process's first answered completion.

        Raises:
            RuntimeError: It exited, or did not answer in time (its log attached).
        """
        with httpx.Client(timeout=10) as client:
            while not self.poll_ready(client):
                time.sleep(0.02)
        return self

    def poll_ready(self, client: httpx.Client) -> bool:
        """Ask once; True (and `cold_start_s` set) when it answered.

        Raises:
            RuntimeError: It exited, or did not answer in time (its log attached).
        """
        assert self.process is not None, "spawn first"
        if self.cold_start_s is not None:
            return True
        body = {"model": self._model, "messages": [{"role": "user", "content": "ready?"}]}
        try:
            answer = client.post(f"{self.url}/v1/chat/completions", json=body, headers=self.headers)
            if answer.status_code == 200:
                self.cold_start_s = time.perf_counter() - self._began
                return True
        except httpx.TransportError:
            pass  # not listening yet
        if self.process.poll() is not None or time.perf_counter() - self._began > self._timeout:
            self.stop()
            raise RuntimeError(f"{self.name} did not answer:\n{self.log()[-4000:]}")
        return False

    def log(self) -> str:
        """What the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; closes the log."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


def start_together(targets: Sequence[TargetProcess], pinning: Pinning) -> None:
    """Start several targets at once on any core, then move each to the target core.

    Each moves with all its threads. Their imports take half the time on two cores; their
    `cold_start_s` is then that of a start beside the others.

    Raises:
        RuntimeError: One did not start (the others are stopped).
    """
    started = False
    try:
        for target in targets:
            target.spawn(pinned=False)
        waiting = list(targets)
        with httpx.Client(timeout=10) as client:
            while waiting:
                waiting = [target for target in waiting if not target.poll_ready(client)]
                time.sleep(0.02)  # a sync poll of child processes, no event loop here
        for target in targets:
            pinning.pin_running(target.pid)
        started = True
    finally:
        if not started:  # whatever stopped the start (an error, Ctrl-C): none is left running
            for target in targets:
                target.stop()
