"""`openai-compatible`: any server that speaks OpenAI's API (vLLM, llama.cpp, LM Studio)."""

from __future__ import annotations

from nodes.providers.openers import open_reasoning_content_wire
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="openai-compatible",
    open=open_reasoning_content_wire,  # sends reasoning back on tool-call turns
    api_key=EnvSetting("OPENAI_COMPATIBLE_API_KEY"),
    base_url=EnvSetting("OPENAI_COMPATIBLE_BASE_URL", required=True),
    speaks_openai=True,
    tool_choice="openai",
)
