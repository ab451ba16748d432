"""LangGraph's own input through the kit (`TurnRequest.direct`) and the graph's raw stream
(`Turn.chunks`): nothing reconciled, a `Command` as is, a fork, every mode, counted once."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langgraph.types import Command

from graph.errors import ErrorCode
from server.refusals import Refused
from server.turns.chunks import ChunksDone, GraphChunk
from server.turns.request import TurnRequest
from server.turns.rewind import rewind, thread_head
from server.turns.threads import ThreadRef
from tests.helpers import WEATHER_TOOL
from tests.unit.server.kit import CALLER, Chat

THREAD = ThreadRef("t-1", "t-1", delta=True)
DOOR = "langgraph"


def direct(*texts: str, thread: ThreadRef | None = THREAD, **extra: Any) -> TurnRequest:
    """A turn as the LangGraph API door asks for it."""
    messages = [HumanMessage(text) for text in texts]
    return TurnRequest(DOOR, CALLER, messages, thread=thread, direct=True, **extra)


async def run(
    chat: Chat, request: TurnRequest, modes: tuple[str, ...] = ("values",)
) -> tuple[list[GraphChunk], ChunksDone]:
    """Open and stream the turn to its end: its parts, and its end."""
    parts: list[GraphChunk] = []
    done: ChunksDone | None = None
    async with chat.kit.open(request) as turn:
        async for item in turn.chunks(list(modes)):
            if isinstance(item, ChunksDone):
                done = item
            else:
                parts.append(item)
    assert done is not None
    return parts, done


def last_text(done: ChunksDone) -> str:
    return str(done.values["messages"][-1].content)


async def test_messages_are_appended_as_sent_and_every_asked_mode_is_streamed(chat: Chat) -> None:
    parts, done = await run(chat, direct("What is 2 + 2?"), ("messages", "updates", "custom"))
    assert last_text(done) == "2 + 2 = 4"
    assert not done.interrupted
    assert {part.mode for part in parts} == {"messages", "updates"}  # values only in the end
    tokens = [p.data[0] for p in parts if p.mode == "messages"]
    assert any(isinstance(token, AIMessageChunk) for token in tokens)
    # A second turn appends again: nothing is reconciled with what the client sent before.
    _, again = await run(chat, direct("What is 2 + 2?"))
    humans = [m.content for m in again.values["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["What is 2 + 2?", "What is 2 + 2?"]
    assert (chat.turns("ok", DOOR), chat.turns("paused", DOOR)) == (2, 0)


async def test_a_pause_ends_interrupted_counts_paused_and_a_command_resumes_it(
    chat: Chat,
) -> None:
    tools = {"client_tools": [WEATHER_TOOL]}
    parts, done = await run(chat, direct("use get_weather city=Oslo", options=tools))
    assert done.interrupted
    (interrupt,) = done.interrupts
    call = interrupt.value["tool_calls"][0]
    assert "__interrupt__" in parts[-1].data  # the last values carry the pause
    assert chat.turns("paused", DOOR) == 1
    resume: Command[Any] = Command(resume={call["id"]: "cold"})
    _, resumed = await run(chat, direct(command=resume, options=tools))
    assert last_text(resumed) == "cold"
    assert not resumed.interrupted
    assert chat.turns("ok", DOOR) == 1


async def test_no_input_continues_and_a_checkpoint_id_forks(chat: Chat) -> None:
    await run(chat, direct("What is 2 + 2?"))
    first = (await chat.snapshot(THREAD)).config["configurable"]["checkpoint_id"]
    await run(chat, direct("What is 3 + 3?"))
    _, forked = await run(chat, direct("What is 5 + 5?", checkpoint_id=first))
    humans = [m.content for m in forked.values["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["What is 2 + 2?", "What is 5 + 5?"]
    _, nothing_new = await run(chat, direct())  # input null: the head as it is
    assert nothing_new.values["messages"] == forked.values["messages"]


async def test_a_checkpoint_that_is_not_stored_is_refused(chat: Chat) -> None:
    with pytest.raises(Refused) as gone:
        await run(chat, direct("hi", checkpoint_id="1f0-missing"))
    assert gone.value.code == ErrorCode.THREAD_NOT_FOUND
    await run(chat, direct("hi"))
    with pytest.raises(Refused) as missing:
        await run(chat, direct("hi", checkpoint_id="1f0-missing"))
    assert missing.value.code == ErrorCode.CHECKPOINT_NOT_FOUND


async def test_events_stream_beside_the_graphs_own_modes(chat: Chat) -> None:
    parts, done = await run(chat, direct("What is 2 + 2?", thread=None), ("events", "updates"))
    assert last_text(done) == "2 + 2 = 4"
    kinds = {p.data["event"] for p in parts if p.mode == "events"}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= kinds
    assert any(p.mode == "updates" for p in parts)
    assert chat.turns("ok", DOOR) == 1


async def test_breakpoints_pause_before_a_node(chat: Chat) -> None:
    _, done = await run(chat, direct("What is 2 + 2?", interrupt_before=["tools"]))
    assert done.interrupted
    assert done.interrupts == ()
    assert (await chat.snapshot(THREAD)).next == ("tools",)
    _, resumed = await run(chat, direct())
    assert last_text(resumed) == "2 + 2 = 4"


async def test_rewind_restores_the_head_and_forgets_a_new_thread(chat: Chat) -> None:
    await run(chat, direct("What is 2 + 2?"))
    head = await thread_head(chat.kit, THREAD)
    await run(chat, direct("What is 3 + 3?"))
    await rewind(chat.kit, THREAD, head)
    assert [m.content for m in await chat.messages(THREAD)][-1] == "2 + 2 = 4"
    other = ThreadRef("t-2", "t-2")
    await run(chat, direct("hi", thread=other))
    await rewind(chat.kit, other, None)
    assert await thread_head(chat.kit, other) is None


async def test_rewind_to_a_checkpoint_that_is_gone_refuses_and_keeps_the_head(chat: Chat) -> None:
    await run(chat, direct("What is 2 + 2?"))
    head = await thread_head(chat.kit, THREAD)
    with pytest.raises(Refused) as missing:
        await rewind(chat.kit, THREAD, "1f000000-0000-6000-8000-000000000000")
    assert missing.value.code == ErrorCode.CHECKPOINT_NOT_FOUND
    assert await thread_head(chat.kit, THREAD) == head
