"""`offline`: the deterministic model of `nodes/providers/offline.py`; no network, no settings."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from nodes.providers.offline import OfflineChatModel
from nodes.providers.registry import ProviderConfig, ProviderSpec


@dataclass
class OfflineModels:
    """The offline model, whatever the target's model name."""

    config: ProviderConfig

    def chat_model(self, model: str) -> BaseChatModel:
        """A new offline model (it holds no connection)."""
        return OfflineChatModel()

    async def aclose(self) -> None:
        """Nothing to release."""


KIND = ProviderSpec(
    kind="offline",
    open=OfflineModels,
    single_model="offline",
    tool_choice="openai",  # a forced tool is called here as a real model would call it
    openai_response_format=True,  # and a JSON schema is answered with an instance of it
)
