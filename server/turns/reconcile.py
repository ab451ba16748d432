"""Reconciles the full history a chat client resends with the thread stored in checkpoints.

Chat clients send the whole conversation every turn. The stored thread holds more than the
client saw (server tool calls and their results), so both sides are compared as *visible
items*: user, system and client-tool messages one by one, and each run of server-made
messages as one assistant item (its text joined, and the client tool calls it ended with).

A client message is compared by what the client sent, not by what is stored: its id
(`stamp_client_message`, at the door) carries a digest of its content as it arrived, so a
node may rewrite a stored user, system or tool message (redact it, annotate it) as long as
it keeps its id, and the client's resent original still matches it. Messages stored before
ids carried a digest compare by their stored content. Assistant text compares with
whitespace runs as one space and without `<details>`/`<think>` blocks
(`nodes.messages.comparable_text`).

Pure functions only: the service turns the resulting `Plan` into a graph run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from nodes.messages import (
    client_digest,
    client_message_id,
    comparable_content,
    comparable_text,
    content_digest,
    content_text,
    is_client_message,
    storable_args,
)

Key = tuple[object, ...]
M = TypeVar("M", bound=BaseMessage)

_DIGESTED = (HumanMessage, SystemMessage, ToolMessage)
"""The client messages compared by digest; an assistant message compares by its text."""


def stamp_client_message(message: M) -> M:
    """A copy of a message the client sent, with a fresh client id carrying its digest.

    Call it once, when the message enters the service, on every message of the client's
    history (the `/v1` door does, in `to_langchain`), and store the stamped copies: the id
    marks the message as the client's (`is_client_message`) and, for user, system and tool
    messages, carries the `content_digest` of what the client sent. `plan` then matches the
    stored message by that digest, so a node may rewrite its content (for example to redact
    it) and the client's resent original still matches. Any id the message had is replaced.
    """
    content = message.content if isinstance(message, _DIGESTED) else None
    update: dict[str, Any] = {"id": client_message_id(content)}
    if isinstance(message, AIMessage) and message.tool_calls:
        # Args sent as JSON objects (`/agent`) may hold what the checkpointer cannot store.
        calls = [{**call, "args": storable_args(call["args"])} for call in message.tool_calls]
        update["tool_calls"] = calls
    return message.model_copy(update=update)


def stamp_client_messages(messages: Sequence[M]) -> list[M]:
    """`stamp_client_message` over the client's messages, in order."""
    return [stamp_client_message(message) for message in messages]


def _digest(message: BaseMessage, *, arriving: bool) -> str:
    """The digest a stored message arrived with, else (arriving, or legacy) its content's."""
    stamped = None if arriving else client_digest(message)
    return stamped or content_digest(message.content)


@dataclass(frozen=True)
class Item:
    """One message as the client sees it.

    Attributes:
        key: What must be equal on both sides.
        end: How many stored messages precede the end of this item (0 for client items).
        boundary: A finished turn ends here (a server answer without pending client calls).
        server: The item is a run of server-made messages.
    """

    key: Key
    end: int = 0
    boundary: bool = False
    server: bool = False


def client_key(message: BaseMessage, *, arriving: bool = False) -> Key:
    """The comparison key of one message the client sent, or stored as the client's.

    User, system and tool messages compare by `content_digest`: a stored one by the digest
    its id carries (stamped when it arrived) or, without one, that of its content.

    Args:
        message: The message.
        arriving: The message is in the request being reconciled: its content counts,
            whatever its id claims.
    """
    if isinstance(message, HumanMessage):
        return ("user", _digest(message, arriving=arriving))
    if isinstance(message, SystemMessage):
        return ("system", _digest(message, arriving=arriving))
    if isinstance(message, ToolMessage):
        return ("tool", message.tool_call_id, _digest(message, arriving=arriving))
    if isinstance(message, AIMessage):
        calls = frozenset(c.get("id") for c in message.tool_calls)
        return ("assistant", comparable_text(content_text(message.content)), calls)
    return (message.type, comparable_content(message.content))


def visible_items(stored: Sequence[BaseMessage]) -> list[Item]:
    """The stored thread as the client saw it (see the module docstring)."""
    items: list[Item] = []
    texts: list[str] = []
    last_ai: AIMessage | None = None
    server_answered: set[str] = set()
    open_segment = False

    def flush(end: int) -> None:
        nonlocal texts, last_ai, server_answered, open_segment
        if not open_segment:
            return
        calls = frozenset(
            c.get("id")
            for c in (last_ai.tool_calls if last_ai else [])
            if c.get("id") not in server_answered
        )
        text = comparable_text("".join(texts))
        items.append(Item(("assistant", text, calls), end=end, boundary=not calls, server=True))
        texts, last_ai, server_answered, open_segment = [], None, set(), False

    for index, message in enumerate(stored):
        server_made = isinstance(message, AIMessage | ToolMessage) and not is_client_message(
            message
        )
        if server_made:
            open_segment = True
            if isinstance(message, AIMessage):
                texts.append(content_text(message.content))
                last_ai = message
                server_answered = set()
            elif isinstance(message, ToolMessage):
                server_answered.add(message.tool_call_id)
            continue
        flush(index)
        items.append(Item(client_key(message), end=index + 1))
    flush(len(stored))
    return items


def common_prefix(left: Sequence[Key], right: Sequence[Key]) -> int:
    """Length of the longest common prefix of two key lists."""
    count = 0
    for a, b in zip(left, right, strict=False):
        if a != b:
            break
        count += 1
    return count


def _without_assistant_text(keys: list[Key]) -> list[Key]:
    return [(k[0], *k[2:]) if k[0] == "assistant" else k for k in keys]


@dataclass(frozen=True)
class Plan:
    """What to do with a request on a thread.

    Attributes:
        action: `seed` (unknown thread: store the whole history), `append` (the stored thread
            is a prefix: add the new messages), `resume` (answer pending client tool calls),
            `continue` (the same request again while its run was cut short: finish that run),
            `replay` (the same request again after its run finished: answer from the thread
            when the client marks it as a retry), or `fork` (an edit or a regenerate: run
            from the turn boundary at the longest common prefix).
        start: Index into the client's messages of the first one to send to the graph.
        base_end: For `fork`, the number of stored messages the fork keeps.
    """

    action: Literal["seed", "append", "resume", "continue", "replay", "fork"]
    start: int = 0
    base_end: int = 0


def plan(
    stored: Sequence[BaseMessage],
    incoming: Sequence[BaseMessage],
    *,
    finished: bool,
    interrupted: bool,
    retry: bool,
    delta: bool = False,
    assistant_text: bool = True,
) -> Plan:
    """Decide how the client's history continues the stored thread.

    Args:
        stored: The thread's messages at its latest checkpoint.
        incoming: The client's whole history, as LangChain messages. They compare by their
            content, stamped yet or not (an id's digest is not trusted here); but the ones
            the service stores must have been stamped (`stamp_client_messages`) before the
            graph saw them.
        finished: The latest run ended normally (no node left to run).
        interrupted: The latest run is paused for client tool results.
        retry: The client marked this request as a retry of an earlier one.
        delta: The client may send only the new messages (it named the thread with
            `X-Thread-Id`): a history without any assistant message that does not match
            the thread is then appended rather than taken for an edit.
        assistant_text: Compare the text of assistant messages too. Off for a client that
            does not send back the answers it was given (LangServe's playground resends
            them as it rendered them): its assistant messages then match by position.
    """
    if not stored:
        return Plan("seed")
    items = visible_items(stored)
    if not finished and not interrupted and items and items[-1].server:
        items.pop()  # the answer of a run that was cut short: the client never got it whole
    have = [item.key for item in items]
    want = [client_key(m, arriving=True) for m in incoming]
    if not assistant_text:
        have, want = _without_assistant_text(have), _without_assistant_text(want)
    shared = common_prefix(have, want)
    if shared == len(have):
        rest = incoming[shared:]
        if interrupted and rest and isinstance(rest[0], ToolMessage):
            return Plan("resume", start=shared)
        if not rest and not finished and not interrupted:
            return Plan("continue", start=shared)
        if finished and rest:
            return Plan("append", start=shared)
    if delta and interrupted and want and want[0][0] == "tool":
        # Only the results of the calls the thread is paused on (a client that sends only
        # what is new: `X-Thread-Id`, or a Responses API `function_call_output`).
        return Plan("resume", start=0)
    if (
        retry
        and finished
        and shared == len(want)
        and len(have) == len(want) + 1
        and items[-1].boundary
    ):
        return Plan("replay", start=len(want))
    if delta and finished and shared < len(have) and not any(k[0] == "assistant" for k in want):
        # Only new messages: skip system messages the thread already holds.
        known = set(have)
        skip = 0
        while skip < len(want) and want[skip][0] == "system" and want[skip] in known:
            skip += 1
        return Plan("append", start=skip)
    cut = shared
    while cut > 0 and not items[cut - 1].boundary:
        cut -= 1
    return Plan("fork", start=cut, base_end=items[cut - 1].end if cut else 0)
