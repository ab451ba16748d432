"""The graph's values as JSON on this door's wire, and the client's input as the graph's.

LangGraph's clients read a message as the dict of its fields (`{"type": "ai", "content":
..., "id": ..., "tool_calls": [...]}`), an interrupt as `{"id", "value"}`, and everything else
as plain JSON. `jsonable` turns any value of the graph's state or stream into that; the
input's messages, dicts in either LangChain's (`type`) or OpenAI's (`role`) spelling, become
LangChain messages by `input_messages`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

from langchain_core.messages import AnyMessage, BaseMessage, convert_to_messages
from langgraph.types import Interrupt, Send
from pydantic import BaseModel

from graph.errors import ErrorCode
from server.refusals import Refused

__all__ = ["input_messages", "jsonable"]


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        return jsonable(value.model_dump())
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": jsonable(value.value)}
    if isinstance(value, Send):
        return {"node": value.node, "arg": jsonable(value.arg)}
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def input_messages(value: Any, *, param: str = "input.messages") -> list[AnyMessage]:
    """The messages of a run's input, as LangChain messages.

    Accepts what LangGraph's clients send: LangChain message dicts (`{"type": "human",
    "content": ...}`), OpenAI's (`{"role": "user", ...}`), `(role, text)` pairs, plain
    strings (a human message) and message objects.

    Raises:
        Refused: 400 `invalid_request` naming `param` for anything else.
    """
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    try:
        return cast(list[AnyMessage], convert_to_messages(items))
    except (ValueError, TypeError, KeyError, NotImplementedError) as error:
        raise Refused(
            ErrorCode.INVALID_REQUEST, f"Cannot read the messages: {error}", param=param
        ) from error
