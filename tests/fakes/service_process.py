"""The service as its own process (`python -m server`), as operators run it.

Example:
    >>> with ServiceProcess(tmp_path, settings_env(settings)) as service:
    ...     httpx.get(f"{service.url}/health")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Self

import httpx
from pydantic import SecretStr

from server.settings import Settings
from tests.fakes.server_thread import StartStop, free_port

ROOT = Path(__file__).resolve().parents[2]


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=_env_value)
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a process read these settings (fields left at default are
    not set, so the process's own defaults apply)."""
    defaults = Settings.model_construct()
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None or value == getattr(defaults, name, object()):
            continue
        env[name.upper()] = _env_value(value)
    return env


class ServiceProcess(StartStop):
    """`python -m server` on a free loopback port, with only the given environment.

    Args:
        workdir: Working directory (its `.env`, if any, is read; SQLite lives here by default).
        env: Settings as environment variables; HOST and PORT are set here.
        capture_stderr: Keep stderr in a pipe (`process.stderr`) instead of a log file.
        startup_timeout: Seconds to wait for `/health`.
    """

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        capture_stderr: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self._env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(workdir),
            "PYTHONPATH": str(ROOT),
            "SQLITE_PATH": str(workdir / "checkpoints.sqlite"),
            "LOAD_PLUGIN_TOOLS": "false",
            "LOG_LEVEL": "warning",
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }
        self._capture = capture_stderr
        self._timeout = startup_timeout
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[str] | subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start the process and wait until `/health` answers.

        Raises:
            RuntimeError: The process exited or did not answer in time (its log attached).
        """
        if self._capture:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server"],
                cwd=self.workdir,
                env=self._env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        else:
            self._log = self.log_path.open("wb")
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server"],
                cwd=self.workdir,
                env=self._env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the service did not start:\n{self.log()}")
            time.sleep(0.1)  # synchronous polling in test set-up, not on an event loop

    def log(self) -> str:
        """What the process wrote so far (its log file; empty when stderr is captured)."""
        return "" if self._capture else self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        """Send SIGTERM, as an orchestrator stopping a replica does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """`kill -9`: the process gets no chance to finish anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """Kill the process if it still runs, and close its log."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        if self._log is not None:
            self._log.close()
            self._log = None
