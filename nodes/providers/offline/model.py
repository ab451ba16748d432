"""`OfflineChatModel`: `offline_reply` as a LangChain chat model that streams word by word."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from nodes.providers.offline.reply import offline_reply


def _reply_to(
    messages: Sequence[BaseMessage], stop: list[str] | None, options: Mapping[str, Any]
) -> AIMessage:
    """`offline_reply` with the call options LangChain passes (`bind`, `bind_tools`)."""
    limit = options.get("max_tokens") or options.get("max_completion_tokens")
    return offline_reply(
        messages,
        options.get("tools") or [],
        tool_choice=options.get("tool_choice"),
        max_tokens=limit if isinstance(limit, int) else None,
        stop=stop or [],
        response_format=options.get("response_format"),
    )


class OfflineChatModel(BaseChatModel):
    """LangChain chat model wrapping `offline_reply`; streams word by word.

    Call options reach it the way they reach any chat model: `bind_tools(tools,
    tool_choice=...)` and `bind(max_tokens=..., stop=[...], response_format=...)`, or the
    same keywords on `invoke`/`astream`.
    """

    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools with their schemas (forced calls fill them); `tool_choice` as OpenAI's."""
        specs = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=specs, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = _reply_to(messages, stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(_reply_to(messages, stop, kwargs)):
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in _chunks(_reply_to(messages, stop, kwargs)):
            if run_manager is not None:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk


def _chunks(reply: AIMessage) -> Iterator[ChatGenerationChunk]:
    """Split a reply the way a streaming provider would: words, then tool calls, then usage."""
    words = re.findall(r"\S+\s*|\s+", str(reply.content))
    for word in words:
        yield ChatGenerationChunk(message=AIMessageChunk(content=word))
    for index, call in enumerate(reply.tool_calls):
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": json.dumps(call["args"]),
                        "id": call["id"],
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                ],
            )
        )
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            usage_metadata=reply.usage_metadata,
            response_metadata=reply.response_metadata,
            chunk_position="last",
        )
    )
