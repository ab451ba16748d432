"""Observability: metrics, graph callbacks, the instrumented saver, request logs."""
