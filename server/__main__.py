"""`python -m server`: serve the app with uvicorn on HOST:PORT from the settings."""

from __future__ import annotations

import uvicorn

from server.app import create_app
from server.obs.logging import configure_logging
from server.ops.drain import DrainingServer, drain_of
from server.settings import Settings


def main() -> None:
    """Read the settings once and serve."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep configure_logging's handler (JSON or text)
        access_log=False,  # server.obs.middleware writes the access log, with the request id
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    # SIGTERM: /ready turns 503, in-flight streams finish (server/ops/drain.py), exit code 0.
    DrainingServer(config, drain=drain_of(app), delay=settings.shutdown_delay_seconds).run()


if __name__ == "__main__":
    main()
