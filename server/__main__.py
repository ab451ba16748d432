"""`python -m server`: serve the app with uvicorn on HOST:PORT from the settings."""

from __future__ import annotations

import logging

import uvicorn

from server.app import create_app
from server.settings import Settings


def main() -> None:
    """Read the settings once and serve."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
