"""Writing a thread's state without a run through the kit: update, history, copy, delete."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from graph.errors import ErrorCode
from server.refusals import Refused
from server.turns.threads import ThreadRef
from tests.unit.server.kit import Chat, MakeChat

THREAD = ThreadRef("t-1", "k:t-1", delta=True)
OTHER = ThreadRef("t-2", "k:t-2", delta=True)


async def run_turn(chat: Chat, thread: ThreadRef, text: str) -> None:
    """One `/v1` turn on the thread."""
    async with chat.kit.open(chat.request_for(thread, ("user", text))) as turn:
        await turn.complete()


async def test_update_state_writes_as_a_node_and_forks_at_a_checkpoint(chat: Chat) -> None:
    kit = chat.kit
    written = await kit.update_state(THREAD, {"messages": [HumanMessage("hello")]})
    first = written["configurable"]["checkpoint_id"]
    assert [m.content for m in await chat.messages(THREAD)] == ["hello"]
    await kit.update_state(THREAD, {"messages": [HumanMessage("again")]})
    assert [m.content for m in await chat.messages(THREAD)] == ["hello", "again"]

    fork = await kit.update_state(THREAD, None, as_node="__copy__", checkpoint_id=first)
    latest = await chat.snapshot(THREAD)
    assert latest.config["configurable"]["checkpoint_id"] == fork["configurable"]["checkpoint_id"]
    assert [m.content for m in latest.values["messages"]] == ["hello"]
    assert latest.metadata is not None
    assert latest.metadata["source"] == "fork"


async def test_update_state_refuses_what_it_cannot_write(chat: Chat) -> None:
    kit = chat.kit
    await kit.update_state(THREAD, {"messages": [HumanMessage("hello")]})
    with pytest.raises(Refused) as unknown_node:
        await kit.update_state(THREAD, {"messages": []}, as_node="nonode")
    assert unknown_node.value.code == ErrorCode.INVALID_REQUEST
    with pytest.raises(Refused) as missing:
        await kit.update_state(THREAD, {}, checkpoint_id="1f000000-0000-6000-8000-000000000000")
    assert missing.value.code == ErrorCode.CHECKPOINT_NOT_FOUND
    async with kit.locks.hold(THREAD.stored_id):
        with pytest.raises(Refused) as busy:
            await kit.update_state(THREAD, {"messages": [HumanMessage("x")]})
        assert busy.value.code == ErrorCode.THREAD_BUSY
        with pytest.raises(Refused) as busy_delete:
            await kit.delete_thread(THREAD)
        assert busy_delete.value.code == ErrorCode.THREAD_BUSY


async def test_state_history_filters_and_pages(make_chat: MakeChat) -> None:
    chat = make_chat(checkpoint_durability="sync")  # a checkpoint per step
    await run_turn(chat, THREAD, "echo one")
    await run_turn(chat, THREAD, "echo two")
    kit = chat.kit
    everything = await kit.state_history(THREAD, limit=100)
    assert everything == await chat.checkpoints(THREAD)
    inputs = await kit.state_history(THREAD, limit=100, metadata={"source": "input"})
    assert inputs
    assert all((s.metadata or {}).get("source") == "input" for s in inputs)
    newest = everything[0].config["configurable"]["checkpoint_id"]
    older = await kit.state_history(THREAD, limit=1, before=newest)
    assert older == everything[1:2]
    one = await kit.state_history(THREAD, limit=10, checkpoint={"checkpoint_id": newest})
    assert one == everything[:1]
    assert await kit.state_history(OTHER, limit=10) == []


async def test_copy_gives_a_new_thread_the_same_history_and_delete_removes_it(
    chat: Chat,
) -> None:
    await run_turn(chat, THREAD, "echo one")
    await run_turn(chat, THREAD, "echo two")
    kit = chat.kit
    copied = await kit.copy_thread(THREAD, OTHER)
    source, target = await chat.checkpoints(THREAD), await chat.checkpoints(OTHER)
    assert copied == len(source) == len(target)
    assert [s.config["configurable"]["checkpoint_id"] for s in target] == [
        s.config["configurable"]["checkpoint_id"] for s in source
    ]
    assert [s.values for s in target] == [s.values for s in source]
    await run_turn(chat, OTHER, "echo three")  # the copy continues on its own
    assert len(await chat.messages(OTHER)) > len(await chat.messages(THREAD))

    assert await kit.delete_thread(THREAD) is True
    assert await chat.checkpoints(THREAD) == []
    assert await kit.delete_thread(THREAD) is False
    assert await chat.checkpoints(OTHER)
