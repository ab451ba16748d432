"""The draining server's signal handling, without sending real signals."""

from __future__ import annotations

import asyncio
import signal

import uvicorn
from fastapi import FastAPI

from server.stores.drain import Drain, DrainingServer, drain_of


def server(delay: float) -> tuple[DrainingServer, Drain]:
    app = FastAPI()
    drain = drain_of(app)
    assert drain_of(app) is drain
    return DrainingServer(uvicorn.Config(app), drain=drain, delay=delay), drain


def test_without_delay_the_first_signal_starts_the_shutdown_and_is_not_reraised() -> None:
    srv, drain = server(delay=0)
    srv.handle_exit(signal.SIGTERM, None)

    assert drain.draining
    assert srv.should_exit
    assert not srv.force_exit


async def test_with_a_delay_the_replica_keeps_serving_until_it_is_over() -> None:
    srv, drain = server(delay=0.2)
    srv.handle_exit(signal.SIGTERM, None)
    assert drain.draining
    assert not srv.should_exit

    await srv.on_tick(1)
    assert not srv.should_exit
    await asyncio.sleep(0.25)
    await srv.on_tick(2)
    assert srv.should_exit


def test_a_second_signal_skips_the_delay_and_a_third_sigint_forces() -> None:
    srv, _ = server(delay=30)
    srv.handle_exit(signal.SIGTERM, None)
    srv.handle_exit(signal.SIGTERM, None)
    assert srv.should_exit
    assert not srv.force_exit
    srv.handle_exit(signal.SIGINT, None)
    assert srv.force_exit
