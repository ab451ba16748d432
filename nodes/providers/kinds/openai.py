"""`openai`: OpenAI's API (`OPENAI_BASE_URL` for a proxy or another OpenAI-shaped host)."""

from __future__ import annotations

from nodes.providers.openers import open_openai_wire
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="openai",
    open=open_openai_wire,
    api_key=EnvSetting("OPENAI_API_KEY", required=True),
    base_url=EnvSetting("OPENAI_BASE_URL"),
    default_base_url=None,  # the openai SDK's own
    speaks_openai=True,
    tool_choice="openai",
)
