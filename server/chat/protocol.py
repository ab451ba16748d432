"""Pydantic models of the OpenAI Chat Completions request, in OpenAI's wire shape.

The legacy Completions request (`CompletionRequest`, `POST /v1/completions`) is at the end.

What the door sends back (completions, chunks, model cards) is modelled in `wire.py`.

Types are strict, as OpenAI's are: a string is not a bool (`"stream": "yes"` is refused) and
not a number (`"0.5"`); an int is a valid float. Every parameter OpenAI marks nullable takes
`null` as "not set". Content parts are a discriminated union of OpenAI's part types, narrowed
per role; any other part is a 400 naming it. Unknown fields are ignored (clients send extras).
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
    model_validator,
)

from nodes.images import check_image_url


class _Wire(BaseModel):
    """A request object: strict types, unknown fields ignored, no NaN or Infinity.

    Python's JSON reader takes `NaN` and `Infinity`, JSON does not: such a number would
    reach a provider SDK whose encoder refuses it (a 500), so it is a 400 here.
    """

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class TextPart(_Wire):
    """`{"type": "text", "text": ...}`: every role's part."""

    type: Literal["text"]
    text: str


class ImageURL(_Wire):
    """The image of an `image_url` part: a URL or a `data:` URL."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _providers_take_it(cls, url: str) -> str:
        """An http(s) URL or base64 `data:image/...`: what a provider can be given (a 400)."""
        return check_image_url(url)


class ImagePart(_Wire):
    """`{"type": "image_url", "image_url": {"url": ..., "detail": ...}}` (user messages)."""

    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Wire):
    """The audio of an `input_audio` part: base64 data and its format."""

    data: str
    format: Literal["wav", "mp3"]


class AudioPart(_Wire):
    """`{"type": "input_audio", "input_audio": {"data": ..., "format": ...}}` (user messages)."""

    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(_Wire):
    """The file of a `file` part: inline (base64 `file_data`) or uploaded (`file_id`)."""

    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Wire):
    """`{"type": "file", "file": {...}}` (user messages)."""

    type: Literal["file"]
    file: FileRef


class RefusalPart(_Wire):
    """`{"type": "refusal", "refusal": ...}`: an earlier answer's refusal (assistant messages)."""

    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


def _content_kind(value: Any) -> str | None:
    """Which form message content takes; picking it up front keeps errors to that form's."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "parts"
    return None


_CONTENT = Discriminator(
    _content_kind,
    custom_error_type="invalid_type",
    custom_error_message="Input should be a string or an array of content parts",
)
TextContent = Annotated[
    Annotated[str, Tag("string")] | Annotated[list[TextPart], Tag("parts")], _CONTENT
]
UserContent = Annotated[
    Annotated[str, Tag("string")] | Annotated[list[UserPart], Tag("parts")], _CONTENT
]
AssistantContent = Annotated[
    Annotated[str, Tag("string")] | Annotated[list[AssistantPart], Tag("parts")], _CONTENT
]


class FunctionCall(_Wire):
    """A function call of an assistant tool call; `arguments` is a JSON string."""

    name: str
    arguments: str = "{}"


class ToolCallIn(_Wire):
    """A tool call inside an assistant message that the client sends back."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessageIn(_Wire):
    """A system message: text only."""

    role: Literal["system"]
    content: TextContent | None = None
    name: str | None = None


class DeveloperMessageIn(_Wire):
    """A developer message (the newer name of system): text only."""

    role: Literal["developer"]
    content: TextContent | None = None
    name: str | None = None


class UserMessageIn(_Wire):
    """A user message: text, images, audio and files."""

    role: Literal["user"]
    content: UserContent | None = None
    name: str | None = None


class AssistantMessageIn(_Wire):
    """An earlier answer the client sends back: text, refusals, the tool calls it made."""

    role: Literal["assistant"]
    content: AssistantContent | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallIn] | None = None


class ToolMessageIn(_Wire):
    """A client tool's result, answering the assistant's call `tool_call_id`: text only."""

    role: Literal["tool"]
    content: TextContent | None = None
    tool_call_id: str


ChatMessage = Annotated[
    SystemMessageIn | DeveloperMessageIn | UserMessageIn | AssistantMessageIn | ToolMessageIn,
    Field(discriminator="role"),
]
"""One message of the conversation as the client sends it; its `role` picks its type."""


class FunctionSpec(_Wire):
    """The function of a client tool; `parameters` is a JSON Schema object."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(_Wire):
    """A tool the client declares; the server offers it to the model but never runs it."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"]
    function: FunctionSpec


class StreamOptions(_Wire):
    """`stream_options`: only `include_usage` changes what we send."""

    include_usage: bool = False


class ChatCompletionRequest(_Wire):
    """`POST /v1/chat/completions` body; unknown fields are ignored, as OpenAI clients expect."""

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1)
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None

    @field_validator("response_format")
    @classmethod
    def _response_format_is_known(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """OpenAI's three formats; a `json_schema` one names its schema in `json_schema`."""
        if value is None:
            return None
        kind = value.get("type")
        if kind not in ("text", "json_object", "json_schema"):
            raise ValueError(f"response_format type {kind!r} is not supported")
        spec = value.get("json_schema")
        if kind == "json_schema" and not (
            isinstance(spec, dict)
            and isinstance(spec.get("name"), str)
            and isinstance(spec.get("schema", {}), dict | bool)
        ):
            raise ValueError(
                "a json_schema response_format needs a 'json_schema' object with a 'name' "
                "and a 'schema' object"
            )
        return value

    @model_validator(mode="after")
    def _named_tool_choice_exists(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, dict):
            name = (self.tool_choice.get("function") or {}).get("name")
            if name not in {tool.function.name for tool in self.tools or []}:
                raise ValueError(f"tool_choice names '{name}', which is not in 'tools'")
        return self

    @property
    def tool_specs(self) -> list[dict[str, Any]]:
        """The client's tools as plain OpenAI-shaped dicts, for binding to the model."""
        return [tool.model_dump(exclude_none=True) for tool in self.tools or []]

    @property
    def openai_params(self) -> dict[str, Any]:
        """The OpenAI-only fields the client set (others are left to the model).

        Sampling, and a reasoning model's effort and verbosity: passed only to providers
        that speak OpenAI's API (as the Responses door's `reasoning.effort`, `text.verbosity`).
        """
        fields = (
            "seed",
            "frequency_penalty",
            "presence_penalty",
            "logit_bias",
            "reasoning_effort",
            "verbosity",
        )
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}

    @property
    def max_output_tokens(self) -> int | None:
        """The answer's token limit: `max_completion_tokens`, or the older `max_tokens`."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        """Whether the stream ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def stop_list(self) -> list[str]:
        """`stop` as a list (OpenAI accepts a string or a list)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


def _no_token_ids(prompt: object) -> object:
    """A clear 400 for a prompt of token ids; text passes on to the type check.

    Token ids name a tokenizer's tokens, which no chat model of the chain shares.
    """
    if isinstance(prompt, list) and any(
        isinstance(item, int | list) and not isinstance(item, bool) for item in prompt
    ):
        raise ValueError(
            "prompts of token ids are not supported: send the prompt as a string or a list "
            "of strings"
        )
    return prompt


Prompt = Annotated[
    Annotated[str, Tag("string")] | Annotated[list[str], Field(min_length=1), Tag("parts")],
    Discriminator(
        _content_kind,
        custom_error_type="invalid_type",
        custom_error_message="Input should be a string or an array of strings",
    ),
]
"""A completion's `prompt`: one text, or a list of texts (one answer each)."""


class CompletionRequest(_Wire):
    """`POST /v1/completions` body (the legacy text completions); unknown fields are ignored.

    Each prompt is answered by its own stateless run of the graph (`server.chat.completions`),
    `n` times; `suffix` makes it a fill-in-the-middle request.
    """

    model: str = Field(min_length=1)
    prompt: Prompt
    suffix: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    echo: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    best_of: int | None = Field(default=None, ge=1, le=128)
    logprobs: int | None = Field(default=None, ge=0, le=5)
    seed: int | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    user: str | None = None

    _token_ids = field_validator("prompt", mode="before")(_no_token_ids)

    @property
    def prompts(self) -> list[str]:
        """`prompt` as a list (OpenAI accepts a string or a list)."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def choices_per_prompt(self) -> int:
        """`n`: how many answers each prompt gets."""
        return self.n or 1

    @property
    def include_usage(self) -> bool:
        """Whether the stream ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)
