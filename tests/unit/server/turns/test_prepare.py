"""The run kit both doors share: a run's options, and `prepare_run` on a real thread."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from graph.context import Context
from nodes.messages import client_message_id
from server.errors import status_of
from server.refusals import Refused
from server.turns import run as running
from server.turns.prepare import prepare_run, require_answerable, stateless_run
from server.turns.request import run_context
from server.turns.threads import ThreadRef
from tests.conftest import SettingsFactory
from tests.unit.server.kit import Chat, thread_config

THREAD = ThreadRef("door-1", "key:door-1")
DELTA = ThreadRef("door-1", "key:door-1", delta=True)


def user(text: str) -> HumanMessage:
    return HumanMessage(text, id=client_message_id())


def client_ai(text: str) -> AIMessage:
    return AIMessage(text, id=client_message_id())


async def finish(chat: Chat, *messages: Any, thread: ThreadRef = THREAD, **kw: Any) -> None:
    run = await prepare_run(chat.graph, list(messages), thread, Context(), **kw)
    await running.complete(run)


# --- options --------------------------------------------------------------------------------


def test_a_run_s_options_are_the_client_s_within_the_server_s_limits(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        max_tool_rounds=1,
        tool_timeout=2.5,
        tool_output_max_chars=500,
        max_tools_offered=3,
        max_input_chars=40,
    )
    context = run_context(settings, model="offline", stop=["\n"], openai_params={"seed": 1})
    assert (context.model, context.stop, context.openai_params) == ("offline", ["\n"], {"seed": 1})
    limits = (
        context.max_tool_rounds,
        context.tool_timeout,
        context.tool_output_max_chars,
        context.max_tools_offered,
        context.max_input_chars,
    )
    assert limits == (1, 2.5, 500, 3, 40)


def test_a_client_may_lower_a_limit_but_never_raise_it(make_settings: SettingsFactory) -> None:
    settings = make_settings(max_tool_rounds=4, max_input_chars=40)
    lowered = run_context(settings, max_input_chars=10, max_tool_rounds=1)
    assert (lowered.max_input_chars, lowered.max_tool_rounds) == (10, 1)
    raised = run_context(settings, max_input_chars=10_000, max_tool_rounds=99)
    assert (raised.max_input_chars, raised.max_tool_rounds) == (40, 4)
    ignored = run_context(settings, max_input_chars=0, max_tool_rounds=True)
    assert (ignored.max_input_chars, ignored.max_tool_rounds) == (40, 4)


def test_a_stateless_run_keeps_the_door_s_config_and_needs_something_to_answer(
    chat: Chat,
) -> None:
    config: Any = {"tags": ["agent-door"]}
    run = stateless_run(chat.stateless, [user("hi")], Context(), config=config)
    assert (run.graph, run.config, run.replay) == (chat.stateless, config, None)
    with pytest.raises(Refused):
        stateless_run(chat.stateless, [SystemMessage("only a system message")], Context())


@pytest.mark.parametrize(
    "messages",
    [[], [user("hi"), client_ai("hello")], [SystemMessage("s")]],
)
def test_only_a_user_or_tool_message_last_is_answerable(messages: list[Any]) -> None:
    with pytest.raises(Refused) as caught:
        require_answerable(messages)
    assert (status_of(caught.value), caught.value.param) == (400, "messages")


# --- prepare_run ----------------------------------------------------------------------------


class Noop(AsyncCallbackHandler):
    pass


async def test_the_door_s_config_is_kept_and_the_thread_and_key_are_added(chat: Chat) -> None:
    handler = Noop()
    door: Any = {
        "callbacks": [handler],
        "tags": ["agent-door"],
        "configurable": {"user_id": "u1"},
        "metadata": {"door": "agent"},
    }
    run = await prepare_run(
        chat.graph, [user("hi")], THREAD, Context(), config=door, idempotency_key="k"
    )
    assert run.config["callbacks"] == [handler]
    assert run.config["tags"] == ["agent-door"]
    assert run.config["configurable"] == {"user_id": "u1", "thread_id": "key:door-1"}
    assert run.config["metadata"] == {"door": "agent", "idempotency_key": "k"}
    assert door["configurable"] == {"user_id": "u1"}  # the door's own dict is not changed


async def test_the_thread_is_stored_under_its_scoped_id(chat: Chat) -> None:
    await finish(chat, user("What is 2+2?"))
    stored = await chat.graph.aget_state({"configurable": {"thread_id": "key:door-1"}})
    unscoped = await chat.graph.aget_state({"configurable": {"thread_id": "door-1"}})
    assert stored.values["messages"][-1].content == "2+2 = 4"
    assert unscoped.values == {}


async def test_a_named_earlier_checkpoint_is_continued_as_a_branch(chat: Chat) -> None:
    await finish(chat, user("What is 2+2?"))
    after_first = (await chat.snapshot(THREAD)).config["configurable"]["checkpoint_id"]
    await finish(chat, user("What is 3+3?"), thread=DELTA)

    run = await prepare_run(
        chat.graph, [user("What is 5+5?")], DELTA, Context(), checkpoint_id=after_first
    )
    assert run.config["configurable"]["checkpoint_id"] == after_first
    await running.complete(run)

    asked = [m.content for m in await chat.messages(THREAD) if isinstance(m, HumanMessage)]
    assert asked == ["What is 2+2?", "What is 5+5?"]


async def test_a_client_that_names_the_thread_may_send_only_the_new_message(chat: Chat) -> None:
    await finish(chat, SystemMessage("Be brief.", id=client_message_id()), user("What is 2+2?"))

    delta = await prepare_run(
        chat.graph, [SystemMessage("Be brief."), user("echo hi")], DELTA, Context()
    )
    whole = await prepare_run(chat.graph, [user("echo hi")], THREAD, Context())

    assert isinstance(delta.input, dict)
    assert [m.content for m in delta.input["messages"]] == ["echo hi"]  # the system one is known
    assert isinstance(whole.input, dict)
    assert isinstance(whole.input["messages"][0], RemoveMessage)  # without delta: an edit


async def test_assistant_text_may_be_ignored_when_the_client_renders_answers(chat: Chat) -> None:
    await finish(chat, user("What is 2+2?"))
    rendered: list[AnyMessage] = [user("What is 2+2?"), client_ai("**2+2 = 4**"), user("echo next")]

    loose = await prepare_run(chat.graph, rendered, THREAD, Context(), assistant_text=False)
    strict = await prepare_run(chat.graph, rendered, THREAD, Context())

    assert isinstance(loose.input, dict)
    assert [m.content for m in loose.input["messages"]] == ["echo next"]
    assert "checkpoint_id" not in loose.config["configurable"]
    assert isinstance(strict.input, dict)
    assert isinstance(strict.input["messages"][0], RemoveMessage)  # an edit: rewritten


async def test_a_fork_without_a_checkpoint_at_its_base_rewrites_the_branch(chat: Chat) -> None:
    # A thread whose history ends in one checkpoint (written at once, or pruned by retention).
    first, second = user("What is 2+2?"), user("What is 3+3?")
    answer = AIMessage("2+2 = 4", id="run-a1")
    config = thread_config(THREAD)
    written = [first, answer, second, AIMessage("3+3 = 6", id="run-a2")]
    await chat.graph.aupdate_state(config, {"messages": written}, as_node="respond")

    edited: list[AnyMessage] = [user("What is 2+2?"), client_ai("2+2 = 4"), user("What is 4+4?")]
    run = await prepare_run(chat.graph, edited, THREAD, Context())

    assert isinstance(run.input, dict)
    removed, *kept_and_new = run.input["messages"]
    assert isinstance(removed, RemoveMessage)
    assert removed.id == REMOVE_ALL_MESSAGES
    assert [m.id for m in kept_and_new[:2]] == [first.id, answer.id]  # the stored ones
    assert kept_and_new[2].content == "What is 4+4?"
    await running.complete(run)
    stored = await chat.messages(THREAD)
    assert [m.content for m in stored if isinstance(m, HumanMessage)] == [
        "What is 2+2?",
        "What is 4+4?",
    ]
    assert stored[-1].content == "4+4 = 8"


async def test_exact_runs_append_to_the_named_checkpoint_without_reconciling(chat: Chat) -> None:
    await finish(chat, user("echo one"), thread=DELTA)
    # An assistant message first would make a full-history client's request an edit (a
    # fork); a client that names its checkpoint exactly has it appended as sent.
    resent: list[AnyMessage] = [client_ai("one"), user("echo two")]
    before = await chat.messages(DELTA)
    run = await prepare_run(chat.graph, resent, DELTA, Context(), exact=True)
    assert isinstance(run.input, dict)
    assert [m.content for m in run.input["messages"]] == ["one", "echo two"]
    await running.complete(run)
    after = await chat.messages(DELTA)
    assert [m.id for m in after[: len(before)]] == [m.id for m in before]  # kept, appended to
    assert [m.content for m in after[len(before) : len(before) + 2]] == ["one", "echo two"]
    with pytest.raises(Refused):  # tool results where no call waits for them
        await prepare_run(
            chat.graph,
            [ToolMessage("x", tool_call_id="c1", id=client_message_id())],
            DELTA,
            Context(),
            exact=True,
        )
