"""The service: FastAPI app, the OpenAI door, settings and resources."""
