"""Pydantic models of the OpenAI Chat Completions request, in OpenAI's wire shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ContentPart(BaseModel):
    """One part of a multi-part message content (text, image_url, …)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    """A function call of an assistant tool call; `arguments` is a JSON string."""

    name: str
    arguments: str = "{}"


class ToolCallIn(BaseModel):
    """A tool call inside an assistant message that the client sends back."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    """One message of the conversation as the client sends it."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_messages_answer_a_call(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs 'tool_call_id'")
        return self


class FunctionSpec(BaseModel):
    """The function of a client tool; `parameters` is a JSON Schema object."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(BaseModel):
    """A tool the client declares; the server offers it to the model but never runs it."""

    model_config = ConfigDict(extra="allow")

    type: Literal["function"]
    function: FunctionSpec


class StreamOptions(BaseModel):
    """`stream_options`: only `include_usage` changes what we send."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions` body; unknown fields are ignored, as OpenAI clients expect."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
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
    logit_bias: dict[str, float] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None

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
        """The OpenAI-only sampling fields the client set (others are left to the model)."""
        fields = ("seed", "frequency_penalty", "presence_penalty", "logit_bias")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}

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
