"""`openrouter`: OpenRouter, through the OpenAI wire protocol."""

from __future__ import annotations

from nodes.providers.openers import open_openrouter_wire
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="openrouter",
    open=open_openrouter_wire,  # sends reasoning back on tool-call turns
    api_key=EnvSetting("OPENROUTER_API_KEY", required=True),
    base_url=EnvSetting("OPENROUTER_BASE_URL"),
    default_base_url="https://openrouter.ai/api/v1",
    speaks_openai=True,
    tool_choice="openai",
)
