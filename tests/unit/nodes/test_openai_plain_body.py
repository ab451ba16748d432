"""Messages and tools sent past the SDK's per-request walk reach the wire unchanged."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI

from nodes.providers.openai_wire import PlainBodyChatOpenAI
from nodes.tools import ToolConfig, build_tool_registry
from tests.fakes.upstream import FakeUpstream, Reply

HISTORY = [
    SystemMessage("You are terse."),
    HumanMessage("What is 17 * 23?"),
    AIMessage(
        "",
        tool_calls=[{"name": "calculator", "args": {"expression": "17 * 23"}, "id": "call_1"}],
    ),
    ToolMessage("391", tool_call_id="call_1", name="calculator"),
    AIMessage("It is 391."),
    HumanMessage(
        content=[
            {"type": "text", "text": "And this picture, café ☕?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]
    ),
]


@pytest.mark.parametrize("stream", [False, True])
async def test_the_request_body_is_the_same_as_chatopenais(
    primary: FakeUpstream, stream: bool
) -> None:
    upstream = primary
    upstream.default = Reply("ok")
    registry = build_tool_registry(ToolConfig(load_plugins=False))
    tools = list(registry.tools(["calculator", "clock"]))

    http = openai.DefaultAsyncHttpxClient()  # one per test: LangChain's own outlive a loop

    def model(cls: type[ChatOpenAI]) -> Any:
        chat = cls(
            http_async_client=http,
            model="m",
            api_key="k",
            base_url=upstream.openai_base_url,
            max_retries=0,
            stream_usage=True,
        )
        return chat.bind_tools(tools, tool_choice="auto").bind(temperature=0.2)

    async with http:
        for cls in (ChatOpenAI, PlainBodyChatOpenAI):
            if stream:
                async for _ in model(cls).astream(HISTORY):
                    pass
            else:
                await model(cls).ainvoke(HISTORY)

    plain, sent = (r.body for r in upstream.requests)
    assert plain is not None
    assert sent is not None
    assert sent == plain
    assert [m["role"] for m in sent["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert [t["function"]["name"] for t in sent["tools"]] == ["calculator", "clock"]
    assert sent["temperature"] == 0.2
    assert sent.get("stream", False) is stream
