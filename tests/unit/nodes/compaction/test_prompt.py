"""The prompt sent: unchanged without a summary, system prompt + summary + tail with one."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage

from graph.state import Summary
from nodes.compaction.prompt import sent_prompt
from nodes.messages import message_text
from tests.unit.nodes.compaction.threads import chat


def test_without_a_summary_the_thread_is_sent_as_it_is() -> None:
    thread = chat(2)
    assert sent_prompt(thread, None, "default") == thread
    bare = chat(2, system=False)
    sent = sent_prompt(bare, None, "default")
    assert isinstance(sent[0], SystemMessage)
    assert message_text(sent[0]) == "default"
    assert sent[1:] == bare


def test_with_a_summary_the_covered_messages_are_left_out() -> None:
    thread = chat(4)
    summary = Summary(text="they talked", through="a2", messages=4, dropped=0)
    sent = sent_prompt(thread, summary, "default")
    assert [m.id for m in sent[:1]] == ["sys"]
    assert "they talked" in message_text(sent[1])
    assert [m.id for m in sent[2:]] == ["h3", "a3", "h4", "a4"]
    assert isinstance(sent[2], HumanMessage)


def test_instructions_lead_in_place_of_the_default_and_before_the_threads_own() -> None:
    bare = chat(2, system=False)
    sent = sent_prompt(bare, None, "default", instructions="be brief")
    assert [message_text(m) for m in sent[:1]] == ["be brief"]
    assert sent[1:] == bare
    thread = chat(2)
    sent = sent_prompt(thread, None, "default", instructions="be brief")
    assert message_text(sent[0]) == "be brief"
    assert sent[1:] == thread  # the thread's own system message follows, the default does not
