"""Fill-in-the-middle on the offline model: finish the word at the cursor from the document.

A fill-in-the-middle request (`/v1/completions` with a `suffix`, as editors' autocomplete
sends it) reaches the model as the `FILL_IN_THE_MIDDLE` system prompt and one user message:
the text before the cursor, `FILL_HERE`, the text after it. The offline model cannot write
code, and its usual answer (that no provider is configured) would be pasted into the user's
file. It does what a plain editor's word completion does instead: when the cursor ends a
partial word, it completes it with the nearest earlier word of the document that starts
with it (else the first such word after the cursor); otherwise it inserts nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from graph.prompts import FILL_HERE, FILL_IN_THE_MIDDLE
from nodes.messages import message_text

_WORD = re.compile(r"\w+")


def gap_of(messages: Sequence[BaseMessage]) -> tuple[str, str] | None:
    """The text before and after the gap of a fill-in-the-middle request, else None."""
    if not messages or not isinstance(messages[-1], HumanMessage):
        return None
    asks_to_fill = any(
        isinstance(m, SystemMessage) and message_text(m) == FILL_IN_THE_MIDDLE for m in messages
    )
    text = message_text(messages[-1])
    if not asks_to_fill or FILL_HERE not in text:
        return None
    before, _, after = text.partition(FILL_HERE)
    return before, after


def _is_word_char(char: str) -> bool:
    """A character of a word: a Unicode letter or digit, or the underscore."""
    return char.isalnum() or char == "_"


def infill(before: str, after: str) -> str:
    """The rest of the word the cursor ends, taken from the document; "" when there is none.

    Nothing is inserted in the middle of a word (`after` starts with a word character): the
    word is already there.
    """
    start = len(before)
    while start and _is_word_char(before[start - 1]):  # a scan: `\w+$` is quadratic
        start -= 1
    stem = before[start:]
    if not stem or (after and _is_word_char(after[0])):
        return ""

    def longer(text: str) -> list[str]:
        return [w for w in _WORD.findall(text) if w.startswith(stem) and len(w) > len(stem)]

    earlier = longer(before[:start])
    later = longer(after)
    word = earlier[-1] if earlier else later[0] if later else stem
    return word[len(stem) :]
