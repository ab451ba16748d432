"""The `/v1` door: OpenAI's chat completions and models, on the agent graph."""
