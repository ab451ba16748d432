"""Operations: the stores and guards the doors share (checkpointer, Redis, cache, limits, locks).

Nothing here imports a door; the route modules (`health`, `admin`) read the app's state
through `server.deps` only.
"""
