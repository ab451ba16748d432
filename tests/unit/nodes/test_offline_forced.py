"""The offline model after tool results, when `tool_choice` still obliges it to call a tool."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from nodes.providers.offline import OfflineChatModel
from tests.helpers import WEATHER_TOOL

OUTPUT_TOOL = {
    "type": "function",
    "function": {
        "name": "final_result",
        "description": "The final response which ends this conversation",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
            "required": ["city", "temperature"],
        },
    },
}


async def test_required_calls_a_tool_not_yet_called_with_what_the_results_say() -> None:
    model = OfflineChatModel().bind_tools([WEATHER_TOOL, OUTPUT_TOOL], tool_choice="required")
    question = HumanMessage(content="How is the weather in Oslo?")
    first = await model.ainvoke([question])
    assert [c["name"] for c in first.tool_calls] == ["get_weather"]
    result = ToolMessage(content="21 degrees, sunny", tool_call_id=first.tool_calls[0]["id"] or "")

    second = await model.ainvoke([question, first, result])

    [call] = second.tool_calls
    assert call["name"] == "final_result"
    assert call["args"] == {"city": "Oslo", "temperature": 21}
    assert second.response_metadata["finish_reason"] == "tool_calls"
    output = ToolMessage(content="ok", tool_call_id=call["id"] or "")
    third = await model.ainvoke([question, first, result, second, output])
    assert third.tool_calls == []  # every tool called: it answers rather than loop


async def test_a_named_tool_already_called_is_not_called_again() -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    model = OfflineChatModel().bind_tools([WEATHER_TOOL, OUTPUT_TOOL], tool_choice=named)
    question = HumanMessage(content="How is the weather in Oslo?")
    call = await model.ainvoke([question])
    assert isinstance(call, AIMessage)
    result = ToolMessage(content="Sunny", tool_call_id=call.tool_calls[0]["id"] or "")

    answer = await model.ainvoke([question, call, result])

    assert (answer.content, answer.tool_calls) == ("Sunny", [])
