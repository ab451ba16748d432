"""Pydantic models of the Responses API request (`POST /v1/responses`), in OpenAI's wire shape.

What the door sends back is modelled in `wire.py`. Types are strict, as on `/v1` (a string
is not a bool, NaN is refused, `null` is "not set"). Unlike `/v1/chat/completions`, a field
that is no parameter of the endpoint is not ignored: OpenAI answers it with a 400
`unknown_parameter`, and so does the door (`service.ResponsesService.validate`), because a
parameter it does not know could change what the client expects. Parameters OpenAI has and
the service cannot honour are typed loosely here and refused there (`unsupported_parameter`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from nodes.images import check_image_url


class _Wire(BaseModel):
    """A request object: strict types, no NaN or Infinity; unknown nested fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class InputText(_Wire):
    """`{"type": "input_text", "text": ...}`."""

    type: Literal["input_text"]
    text: str


class InputImage(_Wire):
    """`{"type": "input_image", "image_url": ..., "detail": ...}`: a URL or a `data:` URL."""

    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None

    @field_validator("image_url")
    @classmethod
    def _providers_take_it(cls, url: str | None) -> str | None:
        """An http(s) URL or base64 `data:image/...`: what a provider can be given (a 400)."""
        return None if url is None else check_image_url(url)

    @field_validator("file_id")
    @classmethod
    def _no_files_api(cls, file_id: str | None) -> str | None:
        if file_id is not None:
            raise ValueError("file_id needs OpenAI's Files API; send image_url instead")
        return file_id


class InputFile(_Wire):
    """`{"type": "input_file", "file_data": ..., "filename": ...}`: inline files only."""

    type: Literal["input_file"]
    file_data: str | None = None
    filename: str | None = None
    file_id: str | None = None
    file_url: str | None = None

    @field_validator("file_id", "file_url")
    @classmethod
    def _inline_only(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("only inline files (file_data) are supported")
        return value


class OutputText(_Wire):
    """`{"type": "output_text", "text": ...}`: an earlier answer's text, sent back."""

    type: Literal["output_text"]
    text: str


class Refusal(_Wire):
    """`{"type": "refusal", "refusal": ...}`: an earlier answer's refusal, sent back."""

    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")
]
"""A part of a message's content; which parts a role may have is checked by the adapter."""


class MessageItem(_Wire):
    """A message: `{"role": ..., "content": ...}`, with or without `"type": "message"`."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None


class FunctionCallItem(_Wire):
    """A function call the model made earlier (`function_call`), sent back as history."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None


class FunctionCallOutputItem(_Wire):
    """The client's result of a function call (`function_call_output`)."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]
    id: str | None = None


class ReasoningItem(_Wire):
    """A reasoning item of an earlier output, sent back: accepted, and not sent to the model."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[dict[str, Any]] = Field(default_factory=list)


class ItemReference(_Wire):
    """`{"type": "item_reference", "id": ...}`: an item of a stored response of the caller.

    `ResponsesService.resolve` puts the item it names in its place, before anything else
    reads the input.
    """

    type: Literal["item_reference"] | None = "item_reference"
    id: str = Field(min_length=1)


def _item_kind(value: Any) -> str | None:
    """An item's type; a message may leave it out (OpenAI's `EasyInputMessage`).

    So may a reference: `{"id": ...}` alone, or with `"type": null`.
    """
    if isinstance(value, dict):
        kind = value.get("type", "message")
        if (kind is None or "type" not in value) and "role" not in value and "id" in value:
            return "item_reference"
        return kind if isinstance(kind, str) else None
    return None


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[ItemReference, Tag("item_reference")],
    Discriminator(
        _item_kind,
        custom_error_type="unsupported_item",
        custom_error_message=(
            "Only message, function_call, function_call_output, reasoning and "
            "item_reference items are supported"
        ),
    ),
]
"""One item of `input`; its `type` picks its model."""

StoredItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")],
    Discriminator(_item_kind),
]
"""An item of a stored response, as an `item_reference` brings it back."""


def _input_kind(value: Any) -> str | None:
    """Which form `input` takes; picking it up front keeps errors to that form's."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "items"
    return None


_INPUT = Discriminator(
    _input_kind,
    custom_error_type="invalid_type",
    custom_error_message="Input should be a string or an array of input items",
)


class FunctionTool(_Wire):
    """A function tool: the server offers it to the model and never runs it (a client tool)."""

    type: Literal["function"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class HostedTool(_Wire):
    """A tool OpenAI runs itself (`web_search`, `file_search`, `mcp`, ...): refused."""

    model_config = ConfigDict(strict=True, extra="allow")

    type: str


def _tool_kind(value: Any) -> str:
    return "function" if isinstance(value, dict) and value.get("type") == "function" else "hosted"


ToolIn = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[HostedTool, Tag("hosted")],
    Discriminator(_tool_kind),
]


class TextConfig(_Wire):
    """`text`: the answer's format (`text`, `json_object`, `json_schema`) and verbosity."""

    format: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    """Passed on as the chat door passes its `verbosity` (to providers speaking OpenAI's API)."""


class ReasoningConfig(_Wire):
    """`reasoning`: how hard a reasoning model thinks, and the summary it gives.

    `effort` is passed on as the chat door passes its `reasoning_effort` (to providers
    speaking OpenAI's API); the summary's form is the provider's own (SHOW_REASONING says
    whether reasoning is shown at all).
    """

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


Metadata = dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]]


class CreateResponseRequest(_Wire):
    """`POST /v1/responses` body."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    model: str = Field(min_length=1)
    input: Annotated[
        Annotated[str, Tag("string")]
        | Annotated[Annotated[list[InputItem], Field(min_length=1)], Tag("items")],
        _INPUT,
    ]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    metadata: Annotated[Metadata, Field(max_length=16)] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    """`include_obfuscation` only pads events; it changes nothing here."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    text: TextConfig | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    tools: list[ToolIn] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    # Accepted, and not needed here: they change nothing the service does.
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    service_tier: str | None = None
    access_programs: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    # OpenAI's, refused when set (`service.REFUSED`): honouring them is beyond this service.
    background: Any = None
    background_options: Any = None
    context_management: Any = None
    conversation: Any = None
    include: Any = None
    max_tool_calls: Any = None
    moderation: Any = None
    prompt: Any = None
    top_logprobs: Any = None
    reasoning: ReasoningConfig | None = None

    @property
    def stored(self) -> bool:
        """Whether the response is kept (`store` defaults to true, as on OpenAI)."""
        return self.store is not False

    @property
    def openai_params(self) -> dict[str, Any]:
        """`reasoning.effort` and `text.verbosity` in the chat door's form (when set)."""
        params: dict[str, Any] = {}
        if self.reasoning is not None and self.reasoning.effort is not None:
            params["reasoning_effort"] = self.reasoning.effort
        if self.text is not None and self.text.verbosity is not None:
            params["verbosity"] = self.text.verbosity
        return params

    @property
    def items(self) -> list[InputItem]:
        """`input` as items: a string is one user message."""
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        return list(self.input)
