"""The agent graph: state, context, routing and the builder (empty on purpose: no cycles)."""
