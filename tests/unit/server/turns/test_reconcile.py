"""Reconciliation of a client's full history with the stored thread, case by case."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from nodes.messages import CLIENT_ID_PREFIX, client_digest, client_message_id, content_digest
from server.turns.reconcile import plan, stamp_client_message, stamp_client_messages, visible_items


def user(text: str) -> HumanMessage:
    return HumanMessage(text, id=client_message_id())


def answer(text: str, **kwargs: object) -> AIMessage:
    return AIMessage(text, id=f"run-{text[:8]}", **kwargs)


def client_ai(text: str, **kwargs: object) -> AIMessage:
    return AIMessage(text, id=client_message_id(), **kwargs)


CALC = {"name": "calculator", "args": {"expression": "2+2"}, "id": "call_s"}
WEATHER = {"name": "weather", "args": {"city": "Oslo"}, "id": "call_c"}

# u1 -> (server tool round) a1 -> u2 -> a2
STORED: list[BaseMessage] = [
    user("hi"),
    answer("", tool_calls=[CALC]),
    ToolMessage("4", tool_call_id="call_s", name="calculator", id="t1"),
    answer("It is 4."),
    user("and again?"),
    answer("Still 4."),
]


def test_server_tool_rounds_are_hidden_in_one_assistant_item() -> None:
    items = visible_items(STORED)
    assert [i.key[0] for i in items] == ["user", "assistant", "user", "assistant"]
    assert items[1].key == ("assistant", "It is 4.", frozenset())
    assert items[1].end == 4
    assert items[1].boundary


def incoming(*messages: BaseMessage) -> list[BaseMessage]:
    return list(messages)


def test_unknown_thread_is_seeded() -> None:
    assert plan([], [user("hi")], finished=True, interrupted=False, retry=False).action == "seed"


def test_prefix_appends_only_the_new_turn() -> None:
    client = incoming(user("hi"), client_ai("It is 4."), user("and again?"), client_ai("Still 4."))
    client.append(user("third"))
    result = plan(STORED, client, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start) == ("append", 4)


def test_whitespace_and_reasoning_blocks_do_not_break_the_match() -> None:
    shown = '<details type="reasoning">routing…</details>\n It is   4. '
    client = incoming(user("hi"), client_ai(shown), user("and again?"), client_ai("Still 4."))
    client.append(user("third"))
    assert plan(STORED, client, finished=True, interrupted=False, retry=False).action == "append"


def test_regenerate_forks_before_the_last_answer() -> None:
    client = incoming(user("hi"), client_ai("It is 4."), user("and again?"))
    result = plan(STORED, client, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 2, 4)


def test_a_marked_retry_of_a_finished_run_is_replayed() -> None:
    client = incoming(user("hi"), client_ai("It is 4."), user("and again?"))
    result = plan(STORED, client, finished=True, interrupted=False, retry=True)
    assert result.action == "replay"


def test_edit_of_the_first_message_forks_from_nothing() -> None:
    result = plan(STORED, [user("hello")], finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 0, 0)


def test_edited_assistant_message_forks_at_the_previous_boundary() -> None:
    client = incoming(user("hi"), client_ai("It is five."), user("and again?"))
    result = plan(STORED, client, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 0, 0)


def test_a_run_cut_short_is_continued_when_the_same_request_comes_again() -> None:
    cut = [*STORED[:5], answer("", tool_calls=[CALC])]
    client = incoming(user("hi"), client_ai("It is 4."), user("and again?"))
    assert plan(cut, client, finished=False, interrupted=False, retry=True).action == "continue"


def test_a_new_message_after_a_cut_run_forks_from_the_last_finished_turn() -> None:
    cut = [*STORED[:5], answer("Sti")]
    client = incoming(
        user("hi"), client_ai("It is 4."), user("and again?"), client_ai("Sti"), user("hm?")
    )
    result = plan(cut, client, finished=False, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 2, 4)


def test_client_tool_results_resume_the_paused_run() -> None:
    paused = [user("weather?"), answer("", tool_calls=[WEATHER])]
    client = incoming(
        user("weather?"),
        client_ai("", tool_calls=[WEATHER]),
        ToolMessage("sunny", tool_call_id="call_c", id=client_message_id()),
    )
    result = plan(paused, client, finished=False, interrupted=True, retry=False)
    assert (result.action, result.start) == ("resume", 2)


def test_client_tool_exchange_stays_visible_after_the_run() -> None:
    done = [
        user("weather?"),
        answer("", tool_calls=[WEATHER]),
        ToolMessage("sunny", tool_call_id="call_c", id=client_message_id()),
        answer("Sunny in Oslo."),
    ]
    keys = [item.key[0] for item in visible_items(done)]
    assert keys == ["user", "assistant", "tool", "assistant"]
    assert visible_items(done)[1].key[2] == frozenset({"call_c"})


def test_delta_clients_may_send_only_the_new_message() -> None:
    result = plan(
        STORED, [user("third")], finished=True, interrupted=False, retry=False, delta=True
    )
    assert (result.action, result.start) == ("append", 0)
    # Without delta (a full-history client such as Open WebUI) the same request is an edit.
    assert plan(STORED, [user("third")], finished=True, interrupted=False, retry=False).action == (
        "fork"
    )


def test_delta_clients_may_send_only_the_tool_results_of_a_paused_run() -> None:
    paused = [user("weather?"), answer("", tool_calls=[WEATHER])]
    results = [ToolMessage("sunny", tool_call_id="call_c", id=client_message_id())]
    result = plan(paused, results, finished=False, interrupted=True, retry=False, delta=True)
    assert (result.action, result.start) == ("resume", 0)
    # A full-history client that sends only the results has lost its history: an edit.
    full = plan(paused, results, finished=False, interrupted=True, retry=False)
    assert full.action == "fork"


# --- nodes that rewrite the client's messages (redaction) -----------------------------------

RAW = "Write to bob@example.com"
MASKED = "Write to [email]"


def masked_copy(message: BaseMessage) -> BaseMessage:
    """What a redacting node stores: the same message (same id), its content rewritten."""
    return message.model_copy(update={"content": str(message.content).replace(RAW, MASKED)})


def redacted_thread(first: HumanMessage) -> list[BaseMessage]:
    return [masked_copy(first), answer("Done."), user("and again?"), answer("Done again.")]


def resent() -> list[BaseMessage]:
    return incoming(user(RAW), client_ai("Done."), user("and again?"), client_ai("Done again."))


def test_a_rewritten_message_still_matches_the_original_the_client_resends() -> None:
    stored = redacted_thread(stamp_client_message(HumanMessage(RAW)))
    assert stored[0].content == MASKED
    result = plan(stored, [*resent(), user("third")], finished=True, interrupted=False, retry=False)
    assert (result.action, result.start) == ("append", 4)


def test_a_node_may_build_a_fresh_message_if_it_keeps_the_id() -> None:
    first = stamp_client_message(HumanMessage(RAW))
    stored = redacted_thread(first)
    stored[0] = HumanMessage(MASKED, id=first.id)  # not a copy: nothing else carried over
    result = plan(stored, [*resent(), user("third")], finished=True, interrupted=False, retry=False)
    assert (result.action, result.start) == ("append", 4)


def test_messages_stored_without_a_digest_compare_by_their_stored_content() -> None:
    # Threads stored before ids carried a digest (`user()` mints such ids) work as before...
    unchanged = [user(RAW), *redacted_thread(user(RAW))[1:]]
    result = plan(unchanged, [*resent(), user("3")], finished=True, interrupted=False, retry=False)
    assert (result.action, result.start) == ("append", 4)
    # ...and a node that rewrote one of their messages made it an edit, as it did before.
    rewritten = redacted_thread(user(RAW))
    result = plan(rewritten, [*resent(), user("3")], finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 0, 0)


def test_an_edit_of_an_earlier_message_still_forks() -> None:
    stored = redacted_thread(stamp_client_message(HumanMessage(RAW)))
    edited = [user(RAW), client_ai("Done."), user("and once more?")]
    result = plan(stored, edited, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 2, 2)
    first_edited = [user("Write to alice@example.com"), *resent()[1:], user("third")]
    result = plan(stored, first_edited, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 0, 0)


def test_a_rewritten_client_tool_result_still_matches() -> None:
    call = {"name": "lookup", "args": {}, "id": "call_c"}
    result_text = f"owner: {RAW}"
    tool = ToolMessage(result_text, tool_call_id="call_c")
    stored = [
        stamp_client_message(HumanMessage("who owns it?")),
        answer("", tool_calls=[call]),
        masked_copy(stamp_client_message(tool)),
        answer("The owner."),
    ]
    assert stored[2].content == f"owner: {MASKED}"
    client = incoming(
        user("who owns it?"),
        client_ai("", tool_calls=[call]),
        ToolMessage(result_text, tool_call_id="call_c", id=client_message_id()),
        client_ai("The owner."),
        user("thanks"),
    )
    result = plan(stored, client, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start) == ("append", 4)


def test_stamping_gives_fresh_client_ids_with_the_digest_and_keeps_the_content() -> None:
    original = [HumanMessage(RAW, id="theirs"), AIMessage("ok", id="theirs-too")]
    once, twice = stamp_client_messages(original), stamp_client_messages(original)
    assert [m.content for m in once] == [RAW, "ok"]
    assert all((m.id or "").startswith(CLIENT_ID_PREFIX) for m in once)
    assert {m.id for m in once}.isdisjoint({m.id for m in twice})
    assert client_digest(once[0]) == client_digest(twice[0]) == content_digest(RAW)
    assert client_digest(once[1]) is None
    assert "bob" not in (once[0].id or "")
    assert original[0].id == "theirs"  # the input is not changed


def test_whitespace_does_not_change_the_digest_but_words_do() -> None:
    assert content_digest(" Write  to\nbob ") == content_digest("Write to bob")
    assert content_digest([{"type": "text", "text": "Write to bob"}]) == content_digest(
        "Write to bob"
    )
    assert content_digest("Write to bob") != content_digest("Write to rob")


def test_an_id_with_a_digest_of_another_version_is_not_trusted() -> None:
    stamped = stamp_client_message(HumanMessage(RAW))
    other = HumanMessage(MASKED, id=(stamped.id or "").replace(".d2-", ".d1-"))
    assert client_digest(other) is None


def test_an_arriving_message_compares_by_its_content_whatever_its_id_claims() -> None:
    first = stamp_client_message(HumanMessage(RAW))
    stored = redacted_thread(first)
    claimed = HumanMessage("something else", id=first.id)  # an unstamped id from a client
    client = [claimed, *resent()[1:], user("third")]
    result = plan(stored, client, finished=True, interrupted=False, retry=False)
    assert (result.action, result.start, result.base_end) == ("fork", 0, 0)
