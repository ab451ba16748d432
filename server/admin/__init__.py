"""The operators' door: `/health`, `/ready`, `/metrics` and `/admin`.

Routes like the other doors (they read the app's state through `server.wiring.deps`), kept apart
from `server.stores` and `server.telemetry`, which the app's state itself is built from.
"""
