"""Pydantic models of what the Responses door sends: responses, items, events, item lists.

Field names, nesting and which fields are null follow the openai SDK's types
(`openai.types.responses.Response`, `ResponseOutputMessage`, `ResponseFunctionToolCall`,
`ResponseUsage`, the `Response*Event`s, `ResponseItemList`), which parse every one of them;
the request side is `protocol.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.errors import error_responses

ItemStatus = Literal["in_progress", "completed", "incomplete"]
ResponseStatus = Literal["in_progress", "completed", "failed", "incomplete"]


class _Out(BaseModel):
    """A response object: the adapter builds it from its own values, so extras are a bug."""

    model_config = ConfigDict(extra="forbid")


class InputTokensDetails(_Out):
    """Cached prompt tokens (read and written): none are reported by the providers here."""

    cache_write_tokens: int = 0
    cached_tokens: int = 0


class OutputTokensDetails(_Out):
    """Reasoning tokens: not counted apart from the output here."""

    reasoning_tokens: int = 0


class ResponseUsage(_Out):
    """Tokens of the whole run (every model call of the turn)."""

    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class OutputText(_Out):
    """The text of an answer."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(_Out):
    """`message`: the answer's text."""

    id: str
    type: Literal["message"] = "message"
    status: ItemStatus
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCall(_Out):
    """`function_call`: a call of one of the client's function tools, for the client to run."""

    id: str
    type: Literal["function_call"] = "function_call"
    status: ItemStatus
    call_id: str
    name: str
    arguments: str
    """The arguments as a JSON string."""


class ReasoningText(_Out):
    """The model's reasoning, as the provider returned it."""

    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class ReasoningOut(_Out):
    """`reasoning`: what the model reasoned before its answer.

    Sent when the provider returns reasoning and SHOW_REASONING is on; the thread keeps it
    either way.
    """

    id: str
    type: Literal["reasoning"] = "reasoning"
    status: ItemStatus
    summary: list[Any] = Field(default_factory=list)
    content: list[ReasoningText]


OutputItem = ReasoningOut | OutputMessage | FunctionCall


ResponseErrorCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
"""OpenAI's codes of a failed response (`response.error.code`): a vocabulary of its own,
apart from the HTTP errors' `graph.errors.ErrorCode`."""

SERVER_ERROR: ResponseErrorCode = "server_error"
"""The code of a response that failed after its stream began (the run's own error is the
message)."""


class ResponseError(_Out):
    """Why a response failed (`status: failed`)."""

    code: ResponseErrorCode
    message: str


class IncompleteDetails(_Out):
    """Why a response is `incomplete`: the answer reached `max_output_tokens`."""

    reason: Literal["max_output_tokens"] = "max_output_tokens"


class FunctionToolOut(_Out):
    """A function tool of the request, echoed."""

    type: Literal["function"] = "function"
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Reasoning(_Out):
    """`reasoning`: the effort and summary the request asked for, echoed (null: not asked)."""

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponseObject(_Out):
    """`response`: what `POST /v1/responses` and `GET /v1/responses/{id}` return."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    completed_at: int | None = None
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: Reasoning = Field(default_factory=Reasoning)
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[FunctionToolOut] = Field(default_factory=list)
    top_p: float | None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class DeletedResponse(_Out):
    """What `DELETE /v1/responses/{id}` answers."""

    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: Literal[True] = True


class ResponseItemList(_Out):
    """`GET /v1/responses/{id}/input_items`: a page of the response's input items."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    """Input items as OpenAI lists them: `message` (with its `id` and `status`),
    `function_call`, `function_call_output`, `reasoning`."""
    first_id: str | None
    last_id: str | None
    has_more: bool


# --- streaming events ----------------------------------------------------------------------


class _Event(_Out):
    sequence_number: int


class ResponseLifecycleEvent(_Event):
    """`response.created`, `.in_progress`, then `.completed`, `.incomplete` or `.failed`."""

    type: Literal[
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    ]
    response: ResponseObject


class OutputItemEvent(_Event):
    """`response.output_item.added` / `.done`."""

    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: OutputItem


class ContentPartEvent(_Event):
    """`response.content_part.added` / `.done`."""

    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: str
    output_index: int
    content_index: int
    part: OutputText | ReasoningText


class TextDeltaEvent(_Event):
    """`response.output_text.delta`: a piece of the answer's text."""

    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = Field(default_factory=list)


class TextDoneEvent(_Event):
    """`response.output_text.done`: the whole text of a part."""

    type: Literal["response.output_text.done"] = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = Field(default_factory=list)


class ReasoningDeltaEvent(_Event):
    """`response.reasoning_text.delta`: a piece of the model's reasoning."""

    type: Literal["response.reasoning_text.delta"] = "response.reasoning_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ReasoningDoneEvent(_Event):
    """`response.reasoning_text.done`: the whole reasoning."""

    type: Literal["response.reasoning_text.done"] = "response.reasoning_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str


class ArgumentsDeltaEvent(_Event):
    """`response.function_call_arguments.delta` (a call's arguments are sent whole, once)."""

    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(_Event):
    """`response.function_call_arguments.done`."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    item_id: str
    output_index: int
    arguments: str


StreamEvent = (
    ResponseLifecycleEvent
    | OutputItemEvent
    | ContentPartEvent
    | TextDeltaEvent
    | TextDoneEvent
    | ReasoningDeltaEvent
    | ReasoningDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
)

#: `responses=` of `POST /v1/responses`: a response or an event stream, or an error.
CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ResponseObject,
        "description": (
            "A `response` (JSON), or with `stream: true` a `text/event-stream` of OpenAI's "
            "Responses events (`event: <type>` and `data: <event>`), from `response.created` "
            "to `response.completed`, or `response.failed` when the run fails after the "
            "first event."
        ),
        "content": {"text/event-stream": {}},
    },
    **error_responses(400, 401, 404, 409, 413, 429, 500, 502, 503),
}
#: `responses=` of `GET /v1/responses/{id}` and `/input_items`, `DELETE /v1/responses/{id}`.
STORED_RESPONSES = error_responses(400, 401, 404, 500, 503)
