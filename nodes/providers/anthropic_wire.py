"""Anthropic's Messages API (langchain-anthropic's ChatAnthropic), for the `anthropic` kind.

Imported only when an Anthropic model is first built (`nodes/providers/openers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import anthropic
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from pydantic import Field, SecretStr

from nodes.providers.reasoning import with_thinking_blocks
from nodes.providers.registry import ProviderConfig
from nodes.providers.wire_note import note_response


class PooledChatAnthropic(ChatAnthropic):
    """ChatAnthropic on an HTTP client we own (the stock one shares a process-wide client).

    The thread stores thinking blocks beside the text (`nodes/providers/reasoning.py`); they
    are put back into the content of tool-use turns here, as Anthropic requires.
    """

    http_async_client: anthropic.DefaultAsyncHttpxClient | None = Field(default=None, exclude=True)

    @cached_property
    def _async_client(self) -> anthropic.AsyncClient:
        return anthropic.AsyncClient(**self._client_params, http_client=self.http_async_client)

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = [with_thinking_blocks(m) for m in self._convert_input(input_).to_messages()]
        payload: dict[str, Any] = super()._get_request_payload(messages, stop=stop, **kwargs)
        return payload


@dataclass
class AnthropicModels:
    """ChatAnthropic models sharing one pooled HTTP client (opened on first use)."""

    config: ProviderConfig
    _client: anthropic.DefaultAsyncHttpxClient | None = field(default=None, init=False)

    def chat_model(self, model: str) -> BaseChatModel:
        """A ChatAnthropic that never retries by itself (the fallback node decides)."""
        return PooledChatAnthropic(  # type: ignore[call-arg]
            model_name=model,
            api_key=self.config.api_key or SecretStr("not-needed"),
            base_url=self.config.base_url,
            default_request_timeout=self.config.timeout,
            max_retries=0,
            max_tokens=4096,
            stream_usage=True,
            default_headers=dict(self.config.headers) or None,
            http_async_client=self._http_client(),
        )

    def _http_client(self) -> anthropic.DefaultAsyncHttpxClient:
        if self._client is None:
            self._client = anthropic.DefaultAsyncHttpxClient(
                timeout=self.config.timeout, event_hooks={"response": [note_response]}
            )
        return self._client

    async def aclose(self) -> None:
        """Close the pooled HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
