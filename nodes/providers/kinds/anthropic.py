"""`anthropic`: Anthropic's Messages API (langchain-anthropic's ChatAnthropic)."""

from __future__ import annotations

from nodes.providers.openers import open_anthropic
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="anthropic",
    open=open_anthropic,  # nodes/providers/anthropic_wire.py, imported with the first model
    api_key=EnvSetting("ANTHROPIC_API_KEY", required=True),
    base_url=EnvSetting("ANTHROPIC_BASE_URL"),
    default_base_url=None,  # the anthropic SDK's own
    tool_choice="anthropic",  # `any`, or a tool's name
)
