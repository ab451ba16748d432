"""Observability: metrics, graph callbacks, the instrumented saver, request logs.

The `/metrics` route that serves them is in `server.operator`.
"""
