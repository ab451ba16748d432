"""Where a thread may be cut: before a user message only, keeping the most recent turns."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from nodes.compaction.cut import boundaries, chunks, keep_from
from tests.unit.nodes.compaction.threads import chat, tool_turn


def one(message: BaseMessage) -> int:
    return 1


def test_boundaries_are_the_user_messages_after_the_first_message() -> None:
    thread = chat(3, system=False)
    assert boundaries(thread) == [2, 4]


def test_keep_from_keeps_the_most_whole_recent_turns_that_fit() -> None:
    thread = chat(10, system=False)  # 20 messages, 2 per turn
    assert keep_from(thread, one, 7) == 14  # three whole turns (6 messages), not 3.5
    assert keep_from(thread, one, 100) == 0  # it all fits: nothing to drop


def test_the_latest_turn_stays_even_when_it_alone_is_over() -> None:
    thread = chat(4, system=False)
    assert keep_from(thread, one, 1) == 6
    assert keep_from([HumanMessage("only", id="h")], one, 0) == 0  # nothing droppable


def test_a_tool_call_is_never_separated_from_its_results() -> None:
    thread = [*tool_turn(1), *tool_turn(2), *tool_turn(3)]
    for room in range(1, 13):
        start = keep_from(thread, one, room)
        assert isinstance(thread[start], HumanMessage), room
        kept_ids = {m.id for m in thread[start:]}
        for message in thread[start:]:
            if isinstance(message, AIMessage) and message.tool_calls:
                assert message.id is not None
                assert f"r{message.id[1:]}" in kept_ids


def test_chunks_split_in_order_within_room() -> None:
    thread = chat(5, system=False)
    pieces = chunks(thread, one, 4)
    assert [len(p) for p in pieces] == [4, 4, 2]
    assert [m for piece in pieces for m in piece] == thread
    assert chunks(thread[:2], lambda m: 10, 4) == [[thread[0]], [thread[1]]]  # big ones alone
