"""The comparators the service is measured against, each its own process like the service.

`one_node`: the floor, a one-node LangGraph graph behind a minimal FastAPI door, with or
without `AsyncPostgresSaver`. `litellm`: LiteLLM's proxy, installed on demand into its own
virtual environment.
"""
