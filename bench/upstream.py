"""The fake upstream in its own process, beside the load generator on the client core.

`python -m bench.upstream --port P` serves `tests.fakes.upstream` answering every
completion with `REPLY_TEXT` (zero latency, nothing recorded); `UpstreamProcess` spawns it
from the benchmark. A process of its own keeps its work out of the load generator's GIL and
event loop (whose clocks time the requests) and gives it a CPU figure of its own per series.
It speaks httptools rather than the tests' h11 (whose transport the fault steps need): on
this 2-core machine, direct calls at C=32 reached about 1,330 JSON / 680 streamed req/s with
the upstream inside the load generator (h11), 1,050 / 500 in its own process with h11, and
1,670 / 765 in its own process with httptools.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Self

from bench.pinning import Pinning
from bench.targets import ROOT, base_env
from tests.fakes.server_thread import StartStop, free_port
from tests.fakes.upstream import FakeUpstream, Reply

__all__ = ["REPLY_TEXT", "UpstreamProcess"]

#: What the fake model answers: nine words, so a stream has nine content chunks.
REPLY_TEXT = "The quick brown fox jumps over the lazy dog."
MODEL = "bench"


class UpstreamProcess(StartStop):
    """`python -m bench.upstream` on a free port, on the client core."""

    def __init__(self, workdir: Path, pinning: Pinning, *, http: str = "httptools") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.openai_base_url = f"{self.url}/v1"
        self._command = pinning.client_command(
            [sys.executable, "-m", "bench.upstream", "--port", str(self.port), "--http", http]
        )
        self._workdir = workdir
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.process is not None, "the upstream is not started"
        return self.process.pid

    def start(self) -> Self:
        """Spawn it and wait for its `ready` line.

        Raises:
            RuntimeError: It exited before it was ready.
        """
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._log = (self._workdir / "upstream.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            self._command,
            cwd=ROOT,
            env=base_env(self._workdir),
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"the fake upstream did not start: {line!r}")
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http", default="httptools", help="uvicorn's HTTP protocol")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with FakeUpstream(port=args.port, keep_requests=False, http=args.http) as upstream:
        upstream.default = Reply(REPLY_TEXT)
        print("ready", flush=True)  # noqa: T201 - the parent waits for this line
        stop.wait()


if __name__ == "__main__":
    main()
