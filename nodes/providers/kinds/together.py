"""`together`: Together AI, through the OpenAI wire protocol."""

from __future__ import annotations

from nodes.providers.openai_wire import OpenAIWireModels
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="together",
    open=OpenAIWireModels,
    api_key=EnvSetting("TOGETHER_API_KEY", required=True),
    base_url=EnvSetting("TOGETHER_BASE_URL"),
    default_base_url="https://api.together.xyz/v1",
    speaks_openai=True,
    openai_tool_choice=True,
)
