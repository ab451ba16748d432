"""Graceful shutdown: on SIGTERM stop taking work, let in-flight streams finish, exit 0.

uvicorn already does the draining itself: on its exit signal it closes the listening
socket, lets running requests (streams included) finish for up to
`timeout_graceful_shutdown` seconds, then runs the lifespan shutdown. `DrainingServer` adds
what a replica behind a load balancer needs on top:

* `/ready` answers 503 "draining" from the first signal on (`Drain`);
* with `SHUTDOWN_DELAY_SECONDS` > 0 the replica keeps serving that long after the signal,
  so the load balancer sees it unready and stops routing to it before its socket closes;
* a drained shutdown exits 0 instead of re-raising the signal (uvicorn's default ends the
  process with "killed by SIGTERM", which orchestrators report as a failure).

A second signal during the delay starts the shutdown at once; one more forces it.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.applications import Starlette

logger = logging.getLogger(__name__)


@dataclass
class Drain:
    """Whether this replica is shutting down (what /ready reports)."""

    started_at: float | None = None

    @property
    def draining(self) -> bool:
        """True once the shutdown signal arrived."""
        return self.started_at is not None

    def begin(self) -> None:
        """Mark the start of the drain (idempotent)."""
        if self.started_at is None:
            self.started_at = time.monotonic()


def drain_of(app: Starlette) -> Drain:
    """The app's drain state, created on first use (shared by the server and /ready)."""
    drain: Drain | None = getattr(app.state, "drain", None)
    if drain is None:
        drain = Drain()
        app.state.drain = drain
    return drain


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a readiness drain, an optional delay, and exit code 0."""

    def __init__(self, config: uvicorn.Config, *, drain: Drain, delay: float = 0.0) -> None:
        super().__init__(config)
        self._drain = drain
        self._delay = delay
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining; unlike uvicorn's own handler, do not re-raise the signal later."""
        first = not self._drain.draining
        self._drain.begin()
        if first and self._delay > 0:
            logger.info("shutdown signal: unready now, draining in %.1fs", self._delay)
            self._exit_at = time.monotonic() + self._delay
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        logger.info("shutdown signal: finishing in-flight requests")
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        """Run every 0.1 s by uvicorn; also ends the delay after a signal."""
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self._exit_at = None
            logger.info("shutdown delay over: finishing in-flight requests")
            self.should_exit = True
        return await super().on_tick(counter)
