"""`python -m server`: serve the app with uvicorn on HOST:PORT from the settings.

`python -m server --reload` (`make dev`) serves the same app, restarted whenever a file under
graph/, nodes/ or server/ changes.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.settings import Settings

#: The packages `--reload` watches (this checkout's, wherever it is run from).
_ROOT = Path(__file__).resolve().parent.parent
RELOAD_DIRS = tuple(str(_ROOT / package) for package in ("graph", "nodes", "server"))


def main(argv: list[str] | None = None) -> None:
    """Read the settings once, build the app without collecting garbage, and serve.

    Importing and building the app allocates about 350,000 objects (pydantic schemas, LangChain
    and LangGraph classes) that live as long as the process. While they are being made the
    cyclic collector scans them again and again, a sixth to a fifth of the start; afterwards
    every full collection would scan them again, mid-request. So the collector is off until the
    app is built, and what was built is frozen (`gc.freeze`): later collections only look at
    what requests allocate. The app's modules are imported after `gc.disable()` for that reason.
    """
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument(
        "--reload",
        action="store_true",
        help="restart on changes under graph/, nodes/, server/ (development only)",
    )
    if parser.parse_args(argv).reload:
        _serve_reloading()
        return
    gc.disable()
    import uvicorn

    from server.edge.slow_clients import server_options
    from server.stores.drain import DrainingServer, drain_of
    from server.telemetry.logging import library_level

    settings, app = _settings_and_app()
    gc.freeze()
    gc.enable()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=library_level(settings.log_level),  # uvicorn's loggers: never below INFO
        log_config=None,  # keep configure_logging's handler (JSON or text)
        access_log=False,  # server.telemetry.middleware writes the access log, with the request id
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        **server_options(settings),  # header size, header and body time (slow clients)
    )
    # SIGTERM: /ready turns 503, in-flight streams finish (server/stores/drain.py), exit code 0.
    DrainingServer(config, drain=drain_of(app), delay=settings.shutdown_delay_seconds).run()


def _settings_and_app() -> tuple[Settings, FastAPI]:
    """The settings, the logging they configure, and the app they build."""
    from server.app import create_app
    from server.settings import Settings
    from server.telemetry.logging import configure_logging
    from server.wiring.services import provider_catalogue

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        provider_catalogue(settings)  # a wrong provider file stops here, in one clear line
    except ValueError as exc:  # ProviderFileError among them
        sys.exit(f"agent-service: {exc}")
    return settings, create_app(settings)


def reloaded_app() -> FastAPI:
    """The app of one `--reload` worker: a fresh process each time, so it reads the settings."""
    return _settings_and_app()[1]


def _serve_reloading() -> None:
    """Serve through uvicorn's reloader: this process watches, a worker serves `reloaded_app`.

    Without the drain of `DrainingServer` and the frozen heap: neither matters on a laptop.
    The bounds on slow clients are the defaults (`server.edge.slow_clients`).
    """
    import uvicorn

    from server.settings import Settings
    from server.telemetry.logging import configure_logging, library_level

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)  # the reloader's own lines
    uvicorn.run(
        "server.__main__:reloaded_app",
        factory=True,
        reload=True,
        reload_dirs=list(RELOAD_DIRS),
        host=settings.host,
        port=settings.port,
        log_level=library_level(settings.log_level),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        # By name: the reloader hands its config to each worker (pickled), so the default
        # bounds on slow clients apply here, whatever MAX_HEADER_BYTES and the timeouts say.
        http="server.edge.slow_clients:GuardedHttpProtocol",
    )


if __name__ == "__main__":
    main()
