"""Observability: metrics, what the graph's nodes report (turns), the instrumented saver, logs.

The `/metrics` route that serves them is in `server.admin`.
"""
