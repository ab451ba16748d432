"""Operations: the stores and guards the doors share (checkpointer, Redis, cache, limits, locks).

Nothing here imports a door or the app's state; the operators' routes over them are in
`server.admin`.
"""
