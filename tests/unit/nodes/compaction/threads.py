"""Threads for the compaction tests: numbered turns whose messages have stable ids."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage


def chat(turns: int, *, system: bool = True, words: int = 20) -> list[BaseMessage]:
    """`turns` user/assistant pairs of about `words` words each (after a system prompt)."""
    messages: list[BaseMessage] = []
    if system:
        messages.append(SystemMessage(content="You are terse.", id="sys"))
    filler = " ".join(["word"] * words)
    for n in range(1, turns + 1):
        messages.append(HumanMessage(content=f"question {n}: {filler}", id=f"h{n}"))
        messages.append(AIMessage(content=f"answer {n}: {filler}", id=f"a{n}"))
    return messages


def tool_turn(n: int, *, output_words: int = 200) -> list[BaseMessage]:
    """A turn whose answer needed a tool: question, call, result, answer."""
    call = {"name": "echo", "args": {"text": f"t{n}"}, "id": f"call{n}", "type": "tool_call"}
    return [
        HumanMessage(content=f"use the tool {n}", id=f"h{n}"),
        AIMessage(content="", tool_calls=[call], id=f"c{n}"),
        ToolMessage(content=" ".join(["out"] * output_words), tool_call_id=f"call{n}", id=f"r{n}"),
        AIMessage(content=f"done {n}", id=f"a{n}"),
    ]
