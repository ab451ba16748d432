"""The Responses API door (`/v1/responses`): OpenAI's Responses on the same graph and threads."""
