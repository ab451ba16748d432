"""Pydantic models of what the /v1 door sends: completions, chunks, model cards.

The request side is `protocol.py`; the two are split because together they pass the size a
module may have. Field order is the JSON key order, and each field says whether it is null
or absent when there is nothing to put in it, the way OpenAI sends it: `refusal`,
`logprobs` and `finish_reason` are null; a delta carries only what it has, a message has
`tool_calls` only when it makes some. Field names and nesting follow the openai SDK's types
(`openai.types.chat.ChatCompletion`, `ChatCompletionChunk`), which parse every one of them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.state import FinishReason
from server.errors import error_responses


def _absent(value: object) -> bool:
    """A field left out of the JSON when it is None (rather than sent as null)."""
    return value is None


class _Out(BaseModel):
    """A response object: the adapter builds it from its own values, so extras are a bug."""

    model_config = ConfigDict(extra="forbid")


class CompletionUsage(_Out):
    """Tokens of the whole run (every model call of the turn)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCallOut(_Out):
    """The function of a tool call; `arguments` is a JSON string."""

    name: str
    arguments: str


class ToolCallOut(_Out):
    """A tool call the model made, for the client to run and answer."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class AssistantMessageOut(_Out):
    """The answer of a `chat.completion`."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    """The text; null when the answer is only tool calls."""
    reasoning_content: str | None = Field(default=None, exclude_if=_absent)
    """The model's reasoning, when the provider returned some (as DeepSeek and vLLM send it)."""
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = Field(default=None, exclude_if=_absent)


class Choice(_Out):
    """The one choice of a `chat.completion` (`n` > 1 is refused)."""

    index: int = 0
    message: AssistantMessageOut
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletion(_Out):
    """`chat.completion`: a whole answer (`stream` false)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage


class ToolCallDelta(_Out):
    """A streamed tool call; each is sent whole, in one delta, at its `index`."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ChoiceDelta(_Out):
    """What a chunk adds to the answer; only the fields it has are sent."""

    role: Literal["assistant"] | None = Field(default=None, exclude_if=_absent)
    content: str | None = Field(default=None, exclude_if=_absent)
    reasoning_content: str | None = Field(default=None, exclude_if=_absent)
    """The model's reasoning, and progress lines of the graph (route, tools, fallbacks) when
    enabled; not the answer."""
    tool_calls: list[ToolCallDelta] | None = Field(default=None, exclude_if=_absent)


class ChunkChoice(_Out):
    """The one choice of a chunk; `finish_reason` is set on the last one only."""

    index: int = 0
    delta: ChoiceDelta
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(_Out):
    """`chat.completion.chunk`: one SSE event of a streamed answer.

    With `stream_options.include_usage`, every chunk has `usage` (null) and a last chunk
    with no choices carries it; without, `usage` is left out of every chunk.
    """

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


CompletionFinishReason = Literal["stop", "length", "content_filter"]
"""Why a legacy completion ended (it has no tool calls)."""


class CompletionChoice(_Out):
    """One answer of a `text_completion`: choice `index` answers prompt `index // n`."""

    text: str
    index: int
    logprobs: None = None
    finish_reason: CompletionFinishReason | None
    """Null on every streamed chunk but a choice's last."""


class TextCompletion(_Out):
    """`text_completion`: a whole legacy completion, or one SSE event of a streamed one.

    Streamed, with `stream_options.include_usage`, every chunk has `usage` (null) and a last
    chunk with no choices carries it; without, `usage` is left out of every chunk. A whole
    completion always has it.
    """

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None


class ModelCard(_Out):
    """One model alias, as `GET /v1/models/{id}` and the model list show it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    """The endpoint of the alias's first provider (`offline`, `openai`, `vllm-a`)."""
    context_window: int | None = None
    """Tokens the alias's first provider takes in one request (an extra field, as vLLM's
    and LiteLLM's model cards have: `max_model_len`, `max_input_tokens`)."""


class ModelList(_Out):
    """`GET /v1/models`: the aliases a client can put in `model`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` put in place, to stand alone inside the OpenAPI doc."""
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _event_stream(event: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI content of a `text/event-stream` of `data: <event>` events."""
    return {
        "itemSchema": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": _inline(event.model_json_schema(mode="serialization")),
                }
            },
        },
    }


#: `responses=` of `POST /v1/chat/completions`: a completion or a stream, or an error.
CHAT_COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletion,
        "description": (
            "A `chat.completion` (JSON), or with `stream: true` a `text/event-stream` of "
            "`data: <chat.completion.chunk>` events ending with `data: [DONE]`. An error "
            "after the first event is sent as one `data: <ErrorResponse>` event instead."
        ),
        "content": {"text/event-stream": _event_stream(ChatCompletionChunk)},
    },
    **error_responses(400, 401, 404, 409, 413, 422, 429, 500, 502, 503),
}
#: `responses=` of `POST /v1/completions`: a completion or a stream, or an error (no thread:
#: no 409).
COMPLETION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": TextCompletion,
        "description": (
            "A `text_completion` (JSON), or with `stream: true` a `text/event-stream` of "
            "`data: <text_completion>` events ending with `data: [DONE]`. An error after the "
            "first event is sent as one `data: <ErrorResponse>` event instead."
        ),
        "content": {"text/event-stream": _event_stream(TextCompletion)},
    },
    **error_responses(400, 401, 404, 413, 422, 429, 500, 502, 503),
}
#: `responses=` of `GET /v1/models`.
MODEL_LIST_RESPONSES = error_responses(401, 500)
#: `responses=` of `GET /v1/models/{id}`.
MODEL_CARD_RESPONSES = error_responses(401, 404, 500)
