"""The offline model's fill-in-the-middle: the word at the cursor, from the document's words."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from graph.prompts import FILL_HERE, FILL_IN_THE_MIDDLE, SYSTEM_PROMPT
from nodes.providers.offline import NOT_CONFIGURED, offline_reply
from nodes.providers.offline.infill import gap_of, infill


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("def greet(name):\n    return 'hi ' + na", "\n", "me"),
        ("total = 0\nfor item in items:\n    tot", "", "al"),  # the nearest earlier word
        ("alpha = 1\nalphabet = 2\nalp", "", "habet"),
        ("x = val", "\nvalue = 3\n", "ue"),  # else the first one after the cursor
        ("x = na", "me + 1", ""),  # mid-word: the word is already there
        ("print(1)\n", "", ""),  # no word at the cursor
        ("", "print(1)", ""),
        ("zz", "", ""),  # no longer word to finish it with
    ],
)
def test_infill_finishes_the_word_at_the_cursor(before: str, after: str, expected: str) -> None:
    assert infill(before, after) == expected


def fim(before: str, after: str) -> list[SystemMessage | HumanMessage]:
    return [
        SystemMessage(content=FILL_IN_THE_MIDDLE),
        HumanMessage(content=f"{before}{FILL_HERE}{after}"),
    ]


def test_only_a_fill_in_the_middle_request_has_a_gap() -> None:
    assert gap_of(fim("a = b", "\n")) == ("a = b", "\n")
    assert gap_of([SystemMessage(content=SYSTEM_PROMPT), HumanMessage(content="hi")]) is None
    assert gap_of([HumanMessage(content=f"what is {FILL_HERE}?")]) is None  # no instruction
    assert gap_of([SystemMessage(content=FILL_IN_THE_MIDDLE), HumanMessage(content="x")]) is None


def test_the_offline_model_fills_a_gap_instead_of_its_notice_and_calls_no_tool() -> None:
    reply = offline_reply(fim("result = 17 * 23\nres", ""), ["calculator"])
    assert reply.content == "ult"
    assert reply.tool_calls == []
    assert reply.response_metadata["finish_reason"] == "stop"
    empty = offline_reply(fim("What is 17 * 23?", ""), ["calculator"])
    assert (empty.content, empty.tool_calls) == ("", [])
    assert NOT_CONFIGURED not in str(empty.content)
