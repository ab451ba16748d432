"""Pure translation between Responses API items and the graph's LangChain messages.

Input items become messages stamped as the client's (`server.turns.reconcile.stamp_client_message`):
`message` items by role, `function_call` items the tool calls of an assistant message (the
ones in a row, and an assistant message before them, make one), `function_call_output`
items tool messages. `reasoning` items are the model's own and are not sent back. A run's
output becomes output items: one `message` with the answer's text, then a `function_call`
per client tool call the run paused on.
"""

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

from graph.errors import ErrorCode
from graph.state import Usage
from nodes.images import standard_image
from nodes.messages import tool_call_args
from server.errors import OpenAIHTTPError
from server.responses.protocol import (
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputItem,
    InputText,
    ItemReference,
    MessageItem,
    OutputText,
    Refusal,
)
from server.responses.wire import (
    FunctionCall,
    OutputItem,
    OutputMessage,
    ReasoningOut,
    ReasoningText,
    ResponseUsage,
)
from server.responses.wire import OutputText as OutputTextOut
from server.turns.reconcile import stamp_client_message


def new_id(prefix: str) -> str:
    """A fresh id in OpenAI's style: `resp_…`, `msg_…`, `fc_…`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> int:
    """Unix seconds, as OpenAI's `created_at`."""
    return int(time.time())


def _refuse_part(param: str, kind: str, role: str) -> OpenAIHTTPError:
    return OpenAIHTTPError(
        400,
        f"A {role} message cannot hold a '{kind}' part.",
        code=ErrorCode.INVALID_REQUEST,
        param=param,
    )


def _user_content(content: str | list[ContentPart], param: str) -> str | list[str | dict[str, Any]]:
    """User content as LangChain content: images as standard image blocks (`nodes.images`)."""
    if isinstance(content, str):
        return content
    blocks: list[str | dict[str, Any]] = []
    for index, part in enumerate(content):
        if isinstance(part, InputText):
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, InputImage):
            if part.image_url is None:
                raise OpenAIHTTPError(
                    400,
                    "An input_image part needs an image_url.",
                    code=ErrorCode.INVALID_REQUEST,
                    param=f"{param}[{index}].image_url",
                )
            detail = part.detail if part.detail in ("low", "high", "auto") else None
            blocks.append(standard_image(part.image_url, detail))
        elif isinstance(part, InputFile):
            file = {"file_data": part.file_data, "filename": part.filename}
            blocks.append({"type": "file", "file": {k: v for k, v in file.items() if v}})
        else:
            raise _refuse_part(f"{param}[{index}].type", part.type, "user")
    return blocks


def _text(content: str | list[ContentPart], param: str, role: str) -> str:
    """The text of content the graph keeps as a string (system, assistant, tool output)."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for index, part in enumerate(content):
        if isinstance(part, InputText | OutputText):
            texts.append(part.text)
        elif isinstance(part, Refusal) and role == "assistant":
            continue  # an earlier refusal is not text the model said
        else:
            raise _refuse_part(f"{param}[{index}].type", part.type, role)
    return "".join(texts)


def _tool_call(item: FunctionCallItem) -> ToolCall:
    return ToolCall(name=item.name, args=tool_call_args(item.arguments), id=item.call_id)


def to_messages(items: list[InputItem]) -> list[AnyMessage]:
    """The input items as LangChain messages, stamped as the client's.

    Raises:
        OpenAIHTTPError: 400 for a content part its role cannot hold.
    """
    messages: list[AnyMessage] = []
    for index, item in enumerate(items):
        param = f"input[{index}]"
        if isinstance(item, MessageItem):
            if item.role == "user":
                content = _user_content(item.content, f"{param}.content")
                messages.append(HumanMessage(content=content))
            elif item.role == "assistant":
                messages.append(
                    AIMessage(content=_text(item.content, f"{param}.content", "assistant"))
                )
            else:
                messages.append(
                    SystemMessage(content=_text(item.content, f"{param}.content", "system"))
                )
        elif isinstance(item, FunctionCallItem):
            last = messages[-1] if messages else None
            if isinstance(last, AIMessage):
                messages[-1] = last.model_copy(
                    update={"tool_calls": [*last.tool_calls, _tool_call(item)]}
                )
            else:
                messages.append(AIMessage(content="", tool_calls=[_tool_call(item)]))
        elif isinstance(item, FunctionCallOutputItem):
            output = _text(item.output, f"{param}.output", "tool")
            messages.append(ToolMessage(content=output, tool_call_id=item.call_id))
        elif isinstance(item, ItemReference):
            raise RuntimeError(f"{param}: item references are resolved before this")
        # A reasoning item is the model's own: it is not sent back to it.
    return [stamp_client_message(message) for message in messages]


def input_records(items: list[InputItem]) -> list[dict[str, Any]]:
    """The input items as `GET /v1/responses/{id}/input_items` lists them (each with an id)."""
    records: list[dict[str, Any]] = []
    for item in items:
        record = item.model_dump(exclude_none=True)
        if isinstance(item, MessageItem):
            record["id"] = item.id or new_id("msg")
            record["status"] = "completed"
            if isinstance(item.content, str):
                kind = "output_text" if item.role == "assistant" else "input_text"
                record["content"] = [{"type": kind, "text": item.content}]
            for part in record["content"]:
                if part.get("type") == "output_text":
                    part.setdefault("annotations", [])
                if part.get("type") == "input_image":
                    part.setdefault("detail", "auto")
        elif isinstance(item, FunctionCallItem):
            record["id"] = item.id or new_id("fc")
            record["status"] = "completed"
        elif isinstance(item, FunctionCallOutputItem):
            record["id"] = item.id or new_id("fco")
            record["status"] = "completed"
        elif isinstance(item, ItemReference):
            raise RuntimeError("item references are resolved before this")
        else:
            record["id"] = item.id or new_id("rs")
        records.append(record)
    return records


def output_items(
    text: str,
    calls: list[ToolCall],
    *,
    reasoning: str | None = None,
    message_id: str | None = None,
    reasoning_id: str | None = None,
    cut: bool = False,
) -> list[OutputItem]:
    """A run's output items: its reasoning, its text as a message, then its calls.

    The message is left out when the run made only calls. `message_id`, `reasoning_id`:
    the ids they were streamed under (fresh ones when None); `cut`: the answer stopped at
    the token limit (the message is `incomplete`).
    """
    items: list[OutputItem] = []
    if reasoning:
        items.append(
            ReasoningOut(
                id=reasoning_id or new_id("rs"),
                status="completed",
                content=[ReasoningText(text=reasoning)],
            )
        )
    if text or not calls:
        items.append(
            OutputMessage(
                id=message_id or new_id("msg"),
                status="incomplete" if cut else "completed",
                content=[OutputTextOut(text=text)],
            )
        )
    items.extend(function_call(call) for call in calls)
    return items


def function_call(call: ToolCall) -> FunctionCall:
    """A client tool call as a `function_call` item; `arguments` is a JSON string."""
    return FunctionCall(
        id=new_id("fc"),
        status="completed",
        call_id=call.get("id") or new_id("call"),
        name=call["name"],
        arguments=json.dumps(call["args"]),
    )


def usage_object(usage: Usage | None) -> ResponseUsage:
    """OpenAI's usage object from the summed usage of a run."""
    usage = usage or Usage(input_tokens=0, output_tokens=0, total_tokens=0)
    return ResponseUsage(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        total_tokens=usage["total_tokens"],
    )
