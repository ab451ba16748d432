"""`python -m server`: serve the app with uvicorn on HOST:PORT from the settings."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Read the settings once, build the app without collecting garbage, and serve.

    Importing and building the app allocates about 350,000 objects (pydantic schemas, LangChain
    and LangGraph classes) that live as long as the process. While they are being made the
    cyclic collector scans them again and again, a sixth to a fifth of the start; afterwards
    every full collection would scan them again, mid-request. So the collector is off until the
    app is built, and what was built is frozen (`gc.freeze`): later collections only look at
    what requests allocate. Imported here, after `gc.disable()`, for that reason.
    """
    gc.disable()
    import uvicorn

    from server.app import create_app
    from server.obs.logging import configure_logging
    from server.ops.drain import DrainingServer, drain_of
    from server.settings import Settings
    from server.wiring import provider_catalogue

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        provider_catalogue(settings)  # a wrong provider file stops here, in one clear line
    except ValueError as exc:  # ProviderFileError among them
        sys.exit(f"agent-service: {exc}")
    app = create_app(settings)
    gc.freeze()
    gc.enable()
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
