"""What the door reads from a run's output: the run's own AI messages, its text, its pause."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langgraph.types import Interrupt

from nodes.messages import client_message_id
from server.turns.result import final_text, pending_tool_calls, run_messages

CALL = ToolCall(name="get_weather", args={"city": "Oslo"}, id="c1")


def test_the_run_s_messages_are_the_ai_messages_after_the_last_client_message() -> None:
    earlier = AIMessage("old answer", id="run-1")
    client_ai = AIMessage("edited by the client", id=client_message_id())
    calling = AIMessage("Let me compute. ", id="run-2", tool_calls=[CALL])
    answer = AIMessage("It is 4.", id="run-3")
    output = {
        "messages": [
            HumanMessage("first", id=client_message_id()),
            earlier,
            client_ai,
            HumanMessage("second", id=client_message_id()),
            calling,
            ToolMessage("4", tool_call_id="c1", id="run-t"),
            answer,
        ]
    }
    assert run_messages(output) == [calling, answer]
    assert final_text(output) == "Let me compute. It is 4."


def test_text_blocks_count_and_other_blocks_do_not() -> None:
    blocks: list[Any] = [{"type": "text", "text": "a"}, {"type": "image_url"}, "b"]
    output = {"messages": [HumanMessage("q", id=client_message_id()), AIMessage(blocks)]}
    assert final_text(output) == "ab"


def test_an_output_without_messages_has_no_text() -> None:
    assert (run_messages({}), final_text({})) == ([], "")


def test_pending_calls_are_those_of_every_interrupt_and_nothing_else() -> None:
    other = ToolCall(name="lookup", args={}, id="c2")
    output = {
        "__interrupt__": [
            Interrupt(value={"tool_calls": [CALL]}, id="i1"),
            Interrupt(value="not a client tool pause", id="i2"),
            Interrupt(value={"tool_calls": [other]}, id="i3"),
        ]
    }
    assert pending_tool_calls(output) == [CALL, other]
    assert pending_tool_calls({"messages": []}) == []
