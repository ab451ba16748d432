"""The OpenAI wire protocol (langchain-openai's ChatOpenAI), for every kind that speaks it.

Imported only when such a model is first built (`nodes/providers/openers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import openai
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from nodes.providers.registry import ProviderConfig
from nodes.providers.wire_note import note_response


@dataclass
class OpenAIWireModels:
    """ChatOpenAI models of one kind, sharing one pooled HTTP client (opened on first use)."""

    config: ProviderConfig
    _client: openai.DefaultAsyncHttpxClient | None = field(default=None, init=False)

    def chat_model(self, model: str) -> BaseChatModel:
        """A ChatOpenAI that never retries by itself (the fallback node decides)."""
        return ChatOpenAI(
            model=model,
            api_key=self.config.api_key or SecretStr("not-needed"),
            base_url=self.config.base_url,
            timeout=self.config.timeout,
            max_retries=0,
            stream_usage=True,
            http_async_client=self._http_client(),
        )

    def _http_client(self) -> openai.DefaultAsyncHttpxClient:
        if self._client is None:
            self._client = openai.DefaultAsyncHttpxClient(
                timeout=self.config.timeout, event_hooks={"response": [note_response]}
            )
        return self._client

    async def aclose(self) -> None:
        """Close the pooled HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
