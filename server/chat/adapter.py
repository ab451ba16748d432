"""Pure translation between OpenAI chat messages/objects and the graph's LangChain messages."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)

from graph.state import Usage
from nodes.images import standard_image
from nodes.messages import tool_call_args
from server.chat.protocol import (
    AssistantContent,
    AssistantMessageIn,
    ChatMessage,
    DeveloperMessageIn,
    ImagePart,
    SystemMessageIn,
    TextContent,
    TextPart,
    UserContent,
    UserMessageIn,
)
from server.chat.wire import (
    AssistantMessageOut,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    CompletionUsage,
    FunctionCallOut,
    ToolCallDelta,
    ToolCallOut,
)
from server.turns.reconcile import stamp_client_message


def _parts(content: UserContent | None) -> str | list[str | dict[str, Any]]:
    """User content as LangChain content.

    Images become LangChain's standard image blocks, which each provider integration turns
    into its own shape (`nodes.images`); the other parts stay OpenAI-shaped dicts.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return [
        standard_image(part.image_url.url, part.image_url.detail)
        if isinstance(part, ImagePart)
        else part.model_dump(exclude_none=True)
        for part in content
    ]


def _text(content: TextContent | AssistantContent | None) -> str:
    """The text of content that the graph keeps as a string (refusal parts are not text)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def _tool_call(call_id: str, name: str, arguments: str) -> ToolCall:
    return ToolCall(name=name, args=tool_call_args(arguments), id=call_id)


def to_langchain(message: ChatMessage) -> AnyMessage:
    """One OpenAI message as a LangChain message, stamped as the client's.

    Its id is a fresh `client-` id carrying the digest of its content
    (`server.turns.reconcile.stamp_client_message`), so the thread recognises it when resent.
    """
    return stamp_client_message(_converted(message))


def _converted(message: ChatMessage) -> AnyMessage:
    if isinstance(message, SystemMessageIn | DeveloperMessageIn):
        return SystemMessage(content=_text(message.content))
    if isinstance(message, UserMessageIn):
        return HumanMessage(content=_parts(message.content), name=message.name)
    if isinstance(message, AssistantMessageIn):
        calls = [
            _tool_call(c.id, c.function.name, c.function.arguments)
            for c in message.tool_calls or []
        ]
        text = _text(message.content)
        return AIMessage(content=text, tool_calls=calls, name=message.name)
    return ToolMessage(content=_text(message.content), tool_call_id=message.tool_call_id)


def completion_id() -> str:
    """A fresh `chatcmpl-…` id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_object(usage: Usage | None) -> CompletionUsage:
    """OpenAI's usage object from the summed usage of a run."""
    usage = usage or Usage(input_tokens=0, output_tokens=0, total_tokens=0)
    return CompletionUsage(
        prompt_tokens=usage["input_tokens"],
        completion_tokens=usage["output_tokens"],
        total_tokens=usage["total_tokens"],
    )


def wire_tool_calls(calls: list[ToolCall]) -> list[ToolCallOut]:
    """Tool calls in OpenAI's shape; `arguments` is a JSON string."""
    return [
        ToolCallOut(
            id=call.get("id") or "",
            function=FunctionCallOut(name=call["name"], arguments=json.dumps(call["args"])),
        )
        for call in calls
    ]


def tool_call_deltas(calls: list[ToolCall]) -> list[ChoiceDelta]:
    """One streamed delta per tool call, each complete, with its `index`."""
    return [
        ChoiceDelta(tool_calls=[ToolCallDelta(index=index, id=wired.id, function=wired.function)])
        for index, wired in enumerate(wire_tool_calls(calls))
    ]


def completion(
    *,
    cid: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: Usage | None,
    tool_calls: list[ToolCall] | None = None,
    reasoning: str | None = None,
) -> dict[str, Any]:
    """A `chat.completion` object, as the JSON-ready dict of a `ChatCompletion`.

    `reasoning`: the model's, sent as `message.reasoning_content`; None leaves it out.
    """
    if tool_calls:
        message = AssistantMessageOut(
            content=text or None,
            reasoning_content=reasoning,
            tool_calls=wire_tool_calls(tool_calls),
        )
    else:
        message = AssistantMessageOut(content=text, reasoning_content=reasoning)
    return ChatCompletion(
        id=cid,
        created=created,
        model=model,
        choices=[Choice(message=message, finish_reason=finish_reason)],
        usage=usage_object(usage),
    ).model_dump()


def chunk(
    *,
    cid: str,
    model: str,
    created: int,
    delta: ChoiceDelta | dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
    with_usage_field: bool = False,
) -> dict[str, Any]:
    """A `chat.completion.chunk`, as the JSON-ready dict of a `ChatCompletionChunk`.

    With `usage` set, the final usage chunk (no choices). Otherwise one choice with `delta`
    (a model, or its fields as a dict); `with_usage_field` (the client asked for usage)
    sends its `usage` as null, and without it `usage` is left out.
    """
    if usage is not None:
        return ChatCompletionChunk(
            id=cid, created=created, model=model, choices=[], usage=usage_object(usage)
        ).model_dump()
    if not isinstance(delta, ChoiceDelta):
        delta = ChoiceDelta.model_validate(delta or {})
    body = ChatCompletionChunk(
        id=cid,
        created=created,
        model=model,
        choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
    )
    return body.model_dump(exclude=None if with_usage_field else {"usage"})


def now() -> int:
    """Unix seconds, as OpenAI's `created`."""
    return int(time.time())
