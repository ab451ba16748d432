"""The `/agent` door's published schemas: mirrors of the graph's input and output.

LangServe validates against pydantic models built from the runnable's schemas; the graph's
`InputState`/`OutputState` are `typing.TypedDict`s, which pydantic rejects on Python 3.11, so
the door publishes these. The input's `messages` carry LangServe's chat widget.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidatorFunctionWrapHandler
from pydantic.functional_validators import WrapValidator
from typing_extensions import TypedDict

__all__ = ["AgentInput", "AgentOutput", "AgentTurn"]


def _type_errors_are_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate the messages, with a `TypeError` of LangChain's own validators made invalid input.

    LangChain's message models rebuild tool calls with keyword arguments in their validators
    (`invalid_tool_call(**call)`): a call with a key it does not know raises a `TypeError`,
    which pydantic passes through, and the door answered a 500. It is the client's input that
    is wrong: a `ValueError` makes it a validation error (the door's 400).
    """
    try:
        return handler(value)
    except TypeError as error:
        raise ValueError(f"a message is malformed: {error}") from error


class AgentTurn(TypedDict):
    """One turn: the new messages, appended to the thread."""

    messages: Annotated[
        list[AnyMessage],
        WrapValidator(_type_errors_are_invalid),
        Field(
            description=(
                "The turn's new messages, LangChain-shaped ({'type': 'human', 'content': ...}). "
                "On a thread, only those after the last AI message are added."
            ),
            # LangServe's playground renders this list as a chat, one human message per run.
            json_schema_extra={"extra": {"widget": {"type": "chat", "input": "messages"}}},
        ),
    ]


class AgentInput(RootModel[AgentTurn]):
    """The input schema: a root model, so LangServe hands the run a plain dict.

    (LangServe unpacks a field model through `instance.model_fields`, which pydantic 2.11
    deprecates with a warning on every request; a root model's root is passed through.)
    """


class AgentOutput(BaseModel):
    """What a run returns (the graph's `OutputState`): the thread's messages and the turn."""

    model_config = ConfigDict(extra="allow")  # fields the graph adds later pass through

    messages: list[AnyMessage]
    route: str | None = None
    """The router's decision: `model`, or `respond` without calling a model."""
    provider: str | None = None
    """The provider target (`kind:model`) that produced the answer."""
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    """Every provider call of the turn, failed, skipped or successful."""
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
