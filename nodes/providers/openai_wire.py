"""The OpenAI wire protocol (langchain-openai's ChatOpenAI), for every kind that speaks it.

Imported only when such a model is first built (`nodes/providers/openers.py`).

ChatOpenAI keeps to OpenAI's own fields and drops the `reasoning_content` / `reasoning` /
`reasoning_details` that DeepSeek, vLLM and OpenRouter add (langchain issue 35059), so
`PlainBodyChatOpenAI` reads them into `additional_kwargs` and sends them back on tool-call
turns (`nodes/providers/reasoning.py`). langchain-deepseek's ChatDeepSeek reads the first two
the same way, but sends nothing back (DeepSeek then refuses the tool round with a 400), drops
`reasoning_details`, defaults its base URL to DeepSeek's (wrong for `openai`) and labels every
answer `deepseek`: a few lines here serve every OpenAI-shaped kind instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.messages.block_translators.openai import convert_to_openai_image_block
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field, SecretStr

from nodes.providers.reasoning import Echo, echoed_fields, wire_reasoning
from nodes.providers.registry import ProviderConfig
from nodes.providers.wire_note import note_response

#: Request fields sent as langchain-openai built them, past the SDK's per-request walk.
PLAIN_FIELDS = ("messages", "tools")


def _detailed(block: str | dict[str, Any]) -> str | dict[str, Any]:
    detail = block.get("extras", {}).get("detail") if isinstance(block, dict) else None
    if not isinstance(block, dict) or block.get("type") != "image" or detail is None:
        return block
    part = convert_to_openai_image_block(block)
    part["image_url"]["detail"] = detail
    return part


def with_image_detail(messages: list[BaseMessage]) -> list[BaseMessage]:
    """Messages whose standard image blocks keep OpenAI's `detail` (in their `extras`).

    langchain-openai converts a standard image block to an `image_url` part without it, so
    a client's `"detail": "low"` would be lost; such blocks become that part here, detail
    included.
    """
    return [
        message.model_copy(update={"content": [_detailed(b) for b in message.content]})
        if isinstance(message.content, list)
        and any(isinstance(b, dict) and "extras" in b for b in message.content)
        else message
        for message in messages
    ]


class PlainBodyChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose messages and tool schemas reach the wire as langchain-openai built them.

    The openai SDK walks every request body against its TypedDict annotations (its
    `transform`, which renames aliased keys and formats dates and files) before encoding it.
    Messages and tool schemas built by langchain-openai have nothing for it to change, but
    the walk costs about 0.23 ms of CPU per message: 28 ms for a thread of 120 messages,
    more than the rest of the turn. Handed to the SDK as `extra_body`, which it merges into
    the JSON body as given, they go out byte for byte the same, without the walk.

    It also keeps the reasoning that OpenAI-compatible servers return, and sends it back as
    `reasoning_echo` says (see the module docstring).
    """

    reasoning_echo: Echo = Field(default="none", exclude=True)
    """How stored reasoning goes back on assistant tool-call messages (`reasoning.Echo`)."""

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = with_image_detail(self._convert_input(input_).to_messages())
        payload: dict[str, Any] = super()._get_request_payload(messages, stop=stop, **kwargs)
        if "messages" not in payload:  # the Responses API's payload: left as it is
            return payload
        if self.reasoning_echo != "none":
            # langchain-openai builds one dict per message, in order.
            for message, wired in zip(messages, payload["messages"], strict=True):
                wired.update(echoed_fields(message, self.reasoning_echo))
        plain = {name: payload.pop(name) for name in PLAIN_FIELDS if name in payload}
        payload["messages"] = []  # required by the SDK's signature; replaced by extra_body
        payload["extra_body"] = {**(payload.get("extra_body") or {}), **plain}
        return payload

    def _create_chat_result(
        self,
        response: dict[str, Any] | openai.BaseModel,
        generation_info: dict[str, Any] | None = None,
    ) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        found = wire_reasoning(_message_fields(response))
        if found and result.generations:
            result.generations[0].message.additional_kwargs.update(found)
        return result

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict[str, Any],
        default_chunk_class: type,
        base_generation_info: dict[str, Any] | None,
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        choices = chunk.get("choices") or []
        delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
        if generation is not None and isinstance(delta, dict):
            generation.message.additional_kwargs.update(wire_reasoning(delta, streamed=True))
        return generation


def _message_fields(response: dict[str, Any] | openai.BaseModel) -> Mapping[str, Any]:
    """The first choice's message fields beyond OpenAI's (the SDK keeps them as extras)."""
    if isinstance(response, dict):
        choices = response.get("choices") or []
        message = choices[0].get("message") if choices else None
        return message if isinstance(message, dict) else {}
    choices = getattr(response, "choices", None) or []
    extra = getattr(getattr(choices[0], "message", None), "model_extra", None) if choices else None
    return extra if isinstance(extra, dict) else {}


@dataclass
class OpenAIWireModels:
    """ChatOpenAI models of one kind, sharing one pooled HTTP client (opened on first use)."""

    config: ProviderConfig
    reasoning_echo: Echo = "none"
    """How the kind sends reasoning back (declared by the kind, through its opener)."""
    _client: openai.DefaultAsyncHttpxClient | None = field(default=None, init=False)

    def chat_model(self, model: str) -> BaseChatModel:
        """A ChatOpenAI that never retries by itself (the fallback node decides)."""
        return PlainBodyChatOpenAI(
            model=model,
            api_key=self.config.api_key or SecretStr("not-needed"),
            base_url=self.config.base_url,
            timeout=self.config.timeout,
            max_retries=0,
            stream_usage=True,
            default_headers=dict(self.config.headers) or None,
            http_async_client=self._http_client(),
            reasoning_echo=self.reasoning_echo,
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
