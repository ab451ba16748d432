"""`together`: Together AI, through the OpenAI wire protocol."""

from __future__ import annotations

from nodes.providers.openers import open_reasoning_content_wire
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="together",
    open=open_reasoning_content_wire,  # sends reasoning back on tool-call turns
    api_key=EnvSetting("TOGETHER_API_KEY", required=True),
    base_url=EnvSetting("TOGETHER_BASE_URL"),
    default_base_url="https://api.together.xyz/v1",
    speaks_openai=True,
    tool_choice="openai",
)
