"""A local or remote Ollama server (langchain-ollama's ChatOllama), for the `ollama` kind.

Imported only when an Ollama model is first built (`nodes/providers/openers.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_ollama import ChatOllama
from ollama import Message, ResponseError

from nodes.providers.registry import ProviderConfig


class ClosableChatOllama(ChatOllama):
    """ChatOllama whose HTTP clients can be closed (the stock one leaves them open).

    Content Ollama cannot take (an image by URL: it reads inline base64 only; audio, files)
    is refused as Ollama would refuse it, with a 400, so the chain falls through to the next
    provider; langchain-ollama raises a bare ValueError, which would be a bug (a 500).
    """

    def _convert_messages_to_ollama_messages(
        self, messages: list[BaseMessage]
    ) -> Sequence[Message]:
        try:
            return super()._convert_messages_to_ollama_messages(messages)
        except ValueError as error:
            raise ResponseError(f"Ollama cannot take this content: {error}", 400) from error

    async def aclose(self) -> None:
        """Close the sync and async Ollama clients."""
        await self._async_client.close()  # type: ignore[no-untyped-call]  # ollama: untyped
        self._client.close()  # type: ignore[no-untyped-call]


@dataclass
class OllamaModels:
    """ChatOllama models; each owns its clients, closed together."""

    config: ProviderConfig
    _models: list[ClosableChatOllama] = field(default_factory=list, init=False)

    def chat_model(self, model: str) -> BaseChatModel:
        """A ChatOllama with the kind's timeout."""
        chat = ClosableChatOllama(
            model=model,
            base_url=self.config.base_url,
            client_kwargs={"timeout": self.config.timeout, "headers": dict(self.config.headers)},
        )
        self._models.append(chat)
        return chat

    async def aclose(self) -> None:
        """Close the clients of every model built."""
        for chat in self._models:
            await chat.aclose()
        self._models.clear()
