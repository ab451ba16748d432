"""The chat door's turns on the real graph (offline model, in memory), through the turn kit:
every way a request meets a thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any, cast

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.types import Command

from graph.context import Context
from graph.errors import ModelNotFoundError
from graph.state import InputState, State
from nodes.guard import refusal_text
from nodes.messages import is_client_message
from server.errors import OpenAIHTTPError, agent_error_status, http_error
from server.refusals import Refused
from server.turns.events import ProgressDelta, StreamEvent, TextDelta, TurnDone
from server.turns.prepare import PreparedRun
from server.turns.request import TurnRequest
from server.turns.result import final_text, pending_tool_calls
from server.turns.threads import ThreadRef
from server.turns.turn import Turn
from tests.helpers import WEATHER_TOOL
from tests.unit.server.kit import CALLER, Chat, MakeChat, assistant_calls

THREAD = ThreadRef("t-1", "t-1")
ASK = ("user", "What is 6*7?")
ASK_WEATHER = ("user", "use get_weather city=Oslo")


async def events_of(chat: Chat, *messages: Any, **extra: Any) -> list[StreamEvent]:
    return await chat.stream(THREAD, *messages, **extra)


def as_http(error: Exception) -> OpenAIHTTPError:
    """The door's HTTP error for a refusal (the kit's) or its own error."""
    if isinstance(error, Refused):
        return http_error(error)
    assert isinstance(error, OpenAIHTTPError)
    return error


async def paused_for_weather(chat: Chat) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run on THREAD paused for the client's get_weather call; its output and wire calls."""
    output = await chat.turn(THREAD, ASK_WEATHER, tools=[WEATHER_TOOL])
    calls = [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
        }
        for c in pending_tool_calls(output)
    ]
    return output, calls


def usage_of(message: BaseMessage) -> dict[str, int]:
    """The usage of one model call, as the graph sums it."""
    assert isinstance(message, AIMessage)
    meta = message.usage_metadata
    assert meta is not None
    return {
        "input_tokens": meta["input_tokens"],
        "output_tokens": meta["output_tokens"],
        "total_tokens": meta["total_tokens"],
    }


# --- validate ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "extra", "code", "param"),
    [(1, {"n": 2}, "unsupported_value", "n"), (3, {}, "too_many_messages", "messages")],
)
async def test_what_the_service_cannot_honour_is_a_400_before_any_work(
    make_chat: MakeChat, count: int, extra: dict[str, Any], code: str, param: str
) -> None:
    chat = make_chat(max_messages=2)
    with pytest.raises((OpenAIHTTPError, Refused)) as caught:
        async with chat.open(THREAD, *[ASK] * count, **extra):
            pytest.fail("opened")
    error = as_http(caught.value)
    assert (error.status, error.code, error.param) == (400, code, param)
    assert await chat.messages(THREAD) == []  # nothing stored, nothing run


async def test_n_1_and_max_messages_exactly_are_accepted(make_chat: MakeChat) -> None:
    chat = make_chat(max_messages=2)
    await chat.admit(("system", "be brief"), ASK, n=1)
    chat.request_for(THREAD, ("system", "be brief"), ASK, n=1)


async def test_an_unknown_model_alias_is_a_404_naming_the_model(chat: Chat) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        async with chat.open(THREAD, ASK, model="gpt-nope"):
            pytest.fail("opened")
    assert agent_error_status(caught.value)[0] == 404
    assert "gpt-nope" in caught.value.message
    assert "offline" in caught.value.message  # the aliases that do exist


async def test_the_context_carries_the_request_and_the_server_limits(make_chat: MakeChat) -> None:
    chat = make_chat(max_tool_rounds=2, tool_timeout=7.0, max_input_chars=999)
    async with chat.open(
        THREAD,
        ASK,
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        max_completion_tokens=20,
        stop="END",
        seed=4,
        tools=[WEATHER_TOOL],
        tool_choice="required",
    ) as turn:
        context = turn.run.context
    assert (context.model, context.temperature, context.top_p) == ("offline", 0.3, 0.9)
    assert context.max_tokens == 20  # max_completion_tokens wins over the older max_tokens
    assert context.stop == ["END"]
    assert context.openai_params == {"seed": 4}
    assert [t["function"]["name"] for t in context.client_tools] == ["get_weather"]
    assert context.tool_choice == "required"
    assert (context.max_tool_rounds, context.tool_timeout, context.max_input_chars) == (2, 7.0, 999)


# --- stateless and background runs ------------------------------------------------------


async def test_without_a_thread_the_run_is_stateless(chat: Chat) -> None:
    async with chat.open(None, ASK) as turn:
        assert turn.run.graph is chat.stateless
        assert "configurable" not in turn.run.config
        result = await turn.complete()
    assert result.text == final_text(result.output) == "6*7 = 42"


async def test_a_background_task_on_a_thread_runs_statelessly(chat: Chat) -> None:
    await chat.turn(THREAD, ASK)
    before = await chat.checkpoints(THREAD)
    task = ("user", "### Task:\nGenerate a title.\n<chat_history>\nUSER: Plan a trip to Rome\n")

    async with chat.open(THREAD, ASK, ("assistant", "6*7 = 42"), task) as turn:
        assert turn.thread is None
        assert turn.run.graph is chat.stateless
        result = await turn.complete()

    assert json.loads(result.text) == {"title": "Plan a trip to rome"}
    assert len(await chat.checkpoints(THREAD)) == len(before)  # the thread never saw it


# --- seed, append, fork -------------------------------------------------------------------


async def test_a_new_thread_is_seeded_with_the_whole_history(chat: Chat) -> None:
    async with chat.open(THREAD, ("system", "Be brief."), ASK) as turn:
        run = turn.run
        assert run.graph is chat.graph
        assert run.config["configurable"] == {"thread_id": "t-1"}
        assert isinstance(run.input, dict)
        assert [m.type for m in run.input["messages"]] == ["system", "human"]
        output = (await turn.complete()).output

    stored = await chat.messages(THREAD)
    assert [m.type for m in stored] == ["system", "human", "ai", "tool", "ai"]
    assert stored[-1].content == "6*7 = 42" == final_text(output)
    assert output["finish_reason"] == "stop"


async def test_the_next_turn_appends_only_the_new_message(chat: Chat) -> None:
    await chat.turn(THREAD, ASK)
    first_turn = await chat.messages(THREAD)
    history = [ASK, ("assistant", "6*7 = 42"), ("user", "echo again")]

    async with chat.open(THREAD, *history) as turn:
        assert isinstance(turn.run.input, dict)
        assert [m.content for m in turn.run.input["messages"]] == ["echo again"]
        await turn.complete()

    stored = await chat.messages(THREAD)
    assert [m.type for m in stored] == ["human", "ai", "tool", "ai"] * 2
    assert stored[-1].content == "again"
    # The first turn is the one stored, not a copy of what the client sent back.
    assert [m.id for m in stored[:4]] == [m.id for m in first_turn]


async def test_an_edited_message_forks_and_the_old_branch_stays_in_history(chat: Chat) -> None:
    await chat.turn(THREAD, ASK)
    await chat.turn(THREAD, ASK, ("assistant", "6*7 = 42"), ("user", "What is 2+2?"))
    first_turn = (await chat.messages(THREAD))[:4]

    edited = [ASK, ("assistant", "6*7 = 42"), ("user", "What is 3+3?")]
    async with chat.open(THREAD, *edited) as turn:
        run = turn.run
        assert "checkpoint_id" in run.config["configurable"]  # from the end of the first turn
        assert isinstance(run.input, dict)
        assert [m.content for m in run.input["messages"]] == ["What is 3+3?"]
        result = await turn.complete()

    assert result.text == "3+3 = 6"
    stored = await chat.messages(THREAD)
    assert [m.id for m in stored[:4]] == [m.id for m in first_turn]
    assert "What is 2+2?" not in [m.content for m in stored]
    branches = [s.values.get("messages", []) for s in await chat.checkpoints(THREAD)]
    assert any(m.content == "2+2 = 4" for messages in branches for m in messages)


async def test_an_edited_first_message_rewrites_the_thread_from_nothing(chat: Chat) -> None:
    await chat.turn(THREAD, ASK)

    async with chat.open(THREAD, ("user", "What is 5*5?")) as turn:
        assert isinstance(turn.run.input, dict)
        first = turn.run.input["messages"][0]
        assert isinstance(first, RemoveMessage)
        assert first.id == REMOVE_ALL_MESSAGES
        await turn.complete()

    stored = await chat.messages(THREAD)
    assert [m.content for m in stored if isinstance(m, HumanMessage)] == ["What is 5*5?"]
    assert stored[-1].content == "5*5 = 25"


# --- client tools: pause and resume -------------------------------------------------------


async def test_a_client_tool_call_pauses_the_run_with_the_calls(chat: Chat) -> None:
    output, calls = await paused_for_weather(chat)
    assert output["finish_reason"] == "tool_calls"
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    snapshot = await chat.snapshot(THREAD)
    assert snapshot.next == ("client_tools",)


async def test_tool_results_resume_the_paused_run_and_report_only_the_rest(chat: Chat) -> None:
    paused, calls = await paused_for_weather(chat)
    history = [ASK_WEATHER, assistant_calls(None, *calls)]
    history.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny, 21C"})

    async with chat.open(THREAD, *history, tools=[WEATHER_TOOL]) as turn:
        run = turn.run
        assert isinstance(run.input, Command)
        assert run.input.resume == {calls[0]["id"]: "sunny, 21C"}
        assert run.usage_before == paused["usage"]
        output = (await turn.complete()).output

    assert final_text(output) == "sunny, 21C"
    assert output["finish_reason"] == "stop"
    stored = await chat.messages(THREAD)
    assert [m.type for m in stored] == ["human", "ai", "tool", "ai"]  # resumed, not re-seeded
    # The thread sums the turn's usage; the client already got the first call's part.
    assert output["usage"] == usage_of(stored[-1])


async def test_a_stream_that_resumes_reports_only_the_rest_of_the_usage(chat: Chat) -> None:
    _, calls = await paused_for_weather(chat)
    tool = {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"}

    events = await events_of(chat, ASK_WEATHER, assistant_calls("", *calls), tool)

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["rain"]
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert done.output["usage"] == usage_of((await chat.messages(THREAD))[-1])
    assert done.output["usage"] != (await chat.snapshot(THREAD)).values["usage"]


@pytest.mark.parametrize("wrong", ["other id", "a user message too"])
async def test_wrong_answers_to_pending_tool_calls_are_a_400(chat: Chat, wrong: str) -> None:
    _, calls = await paused_for_weather(chat)
    history: list[Any] = [ASK_WEATHER, assistant_calls(None, *calls)]
    if wrong == "other id":
        history.append({"role": "tool", "tool_call_id": "call_unknown", "content": "x"})
    else:
        history += [{"role": "tool", "tool_call_id": calls[0]["id"], "content": "x"}, ASK]
    before = await chat.checkpoints(THREAD)

    with pytest.raises(Refused) as caught:
        async with chat.open(THREAD, *history, tools=[WEATHER_TOOL]):
            pytest.fail("opened")

    error = as_http(caught.value)
    assert (error.status, error.param) == (400, "messages")
    if wrong == "other id":
        assert calls[0]["id"] in error.message  # the call still waiting
    assert len(await chat.checkpoints(THREAD)) == len(before)


# --- nothing to answer ---------------------------------------------------------------------


@pytest.mark.parametrize("on_thread", [True, False])
async def test_a_request_ending_with_an_assistant_message_is_a_400(
    chat: Chat, on_thread: bool
) -> None:
    with pytest.raises(Refused) as caught:
        async with chat.open(THREAD if on_thread else None, ASK, ("assistant", "hm")):
            pytest.fail("opened")
    error = as_http(caught.value)
    assert (error.status, error.code) == (400, "invalid_request")


async def test_resending_a_finished_history_unmarked_is_a_400(chat: Chat) -> None:
    await chat.turn(THREAD, ASK)
    with pytest.raises(Refused) as caught:
        async with chat.open(THREAD, ASK, ("assistant", "6*7 = 42")):
            pytest.fail("opened")
    assert as_http(caught.value).status == 400


# --- a run cut short, retries, idempotency keys -----------------------------------------------


async def cut_after_tools(chat: Chat, *, key: str | None = None) -> None:
    """Start ASK on THREAD and stop it once the calculator has run (a client that left)."""
    async with chat.open(THREAD, ASK, idempotency_key=key) as turn:
        run = turn.run
        stream = cast(
            AsyncGenerator[dict[str, Any], None],
            run.graph.astream(run.input, run.config, context=run.context, stream_mode="updates"),
        )
        async for update in stream:
            if "tools" in update:
                break
        await stream.aclose()
    assert (await chat.snapshot(THREAD)).next == ("compact",)


async def test_the_same_request_after_a_cut_run_finishes_it_without_rerunning_tools(
    chat: Chat,
) -> None:
    await cut_after_tools(chat)
    cut_usage = (await chat.snapshot(THREAD)).values["usage"]

    async with chat.open(THREAD, ASK) as turn:
        assert turn.run.input is None  # continue from the last checkpoint
        assert turn.run.usage_before == cut_usage
        output = (await turn.complete()).output

    stored = await chat.messages(THREAD)
    assert [m.type for m in stored] == ["human", "ai", "tool", "ai"]
    assert final_text(output) == "6*7 = 42"
    assert output["usage"] == usage_of(stored[-1])


async def test_a_marked_retry_is_answered_from_the_thread_without_running(chat: Chat) -> None:
    first = await chat.turn(THREAD, ASK)
    before = await chat.checkpoints(THREAD)

    async with chat.open(THREAD, ASK, retry=True) as turn:
        assert turn.run.replay is not None
        output = (await turn.complete()).output
    events = await chat.stream(THREAD, ASK, retry=True)

    assert final_text(output) == final_text(first) == "6*7 = 42"
    assert [type(e) for e in events] == [TextDelta, TurnDone]
    assert isinstance(events[0], TextDelta)
    assert events[0].text == "6*7 = 42"
    assert len(await chat.checkpoints(THREAD)) == len(before)


async def test_the_same_idempotency_key_again_is_a_replay_and_a_new_key_runs(chat: Chat) -> None:
    async with chat.open(THREAD, ASK, idempotency_key="key-1") as turn:
        assert turn.run.config.get("metadata") == {"idempotency_key": "key-1"}
        await turn.complete()

    async def prepared(key: str | None) -> PreparedRun:
        async with chat.open(THREAD, ASK, idempotency_key=key) as turn:
            return turn.run

    again = await prepared("key-1")
    other = await prepared("key-2")
    unkeyed = await prepared(None)

    assert again.replay is not None
    assert final_text(again.replay) == "6*7 = 42"
    assert other.replay is None  # a regenerate
    assert unkeyed.replay is None


async def test_a_cut_run_with_its_key_is_continued_not_replayed(chat: Chat) -> None:
    await cut_after_tools(chat, key="key-1")
    async with chat.open(THREAD, ASK, idempotency_key="key-1") as turn:
        assert (turn.run.input, turn.run.replay) == (None, None)
        assert (await turn.complete()).text == "6*7 = 42"


# --- streaming ---------------------------------------------------------------------------------


async def test_the_stream_yields_the_answer_text_then_the_output(chat: Chat) -> None:
    events = await events_of(chat, ASK)
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1  # as produced, word by word
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert [e for e in events if isinstance(e, TurnDone)] == [done]
    # Only the answer is streamed: not the tool's output, not the tool-call message.
    assert "".join(texts) == final_text(done.output) == "6*7 = 42"
    assert done.output["usage"] == (await chat.snapshot(THREAD)).values["usage"]


async def test_the_guard_s_refusal_is_streamed(make_chat: MakeChat) -> None:
    chat = make_chat(max_input_chars=10)
    events = await events_of(chat, ("user", "x" * 11))
    assert [e.text for e in events if isinstance(e, TextDelta)] == [refusal_text(11, 10)]


async def test_a_paused_stream_ends_with_the_pending_calls_and_no_text(chat: Chat) -> None:
    events = await events_of(chat, ASK_WEATHER, tools=[WEATHER_TOOL])
    assert len(events) == 1
    done = events[0]
    assert isinstance(done, TurnDone)
    assert done.output["finish_reason"] == "tool_calls"
    assert [c["name"] for c in pending_tool_calls(done.output)] == ["get_weather"]


@pytest.mark.parametrize("enabled", [True, False])
async def test_progress_lines_are_streamed_only_when_enabled(
    make_chat: MakeChat, enabled: bool
) -> None:
    chat = make_chat(progress_events=enabled)
    events = await events_of(chat, ASK)
    progress = [e.text for e in events if isinstance(e, ProgressDelta)]
    if not enabled:
        assert progress == []
        return
    assert progress[0].startswith("Route: model (chat")
    assert "Calling calculator (via offline)\n" in progress
    assert "Tool calculator: done\n" in progress
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "6*7 = 42"


async def test_messages_the_client_sent_are_marked_as_the_client_s(chat: Chat) -> None:
    await chat.turn(THREAD, ("system", "Be brief."), ASK)
    stored = await chat.messages(THREAD)
    assert [is_client_message(m) for m in stored] == [True, True, False, False, False]
    assert isinstance(stored[3], ToolMessage)


# --- which nodes are streamed --------------------------------------------------------------


def fake_model(text: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(text)]))


def two_node_graph(*, hang: asyncio.Event | None = None, closed: list[str] | None = None) -> Any:
    """`tools` then `respond`, each streaming a model's answer; `respond` may hang after it."""

    async def tools(state: State) -> dict[str, Any]:
        return {"messages": [await fake_model("hidden tool text").ainvoke(state["messages"])]}

    async def respond(state: State) -> dict[str, Any]:
        try:
            answer = await fake_model("shown answer").ainvoke(state["messages"])
            if hang is not None:
                await hang.wait()
            return {"messages": [answer], "finish_reason": "stop"}
        finally:
            if closed is not None:
                closed.append("respond")

    builder = StateGraph(State)
    builder.add_node("tools", tools)
    builder.add_node("respond", respond)
    builder.add_edge(START, "tools")
    builder.add_edge("tools", "respond")
    builder.add_edge("respond", END)
    return builder.compile()


def turn_on(chat: Chat, graph: Any) -> Turn:
    """A turn of the chat door on `graph` (opened without a thread: it holds nothing)."""
    run = PreparedRun(graph, InputState(messages=[HumanMessage("hi")]), {}, Context())
    request = TurnRequest(door="chat", caller=CALLER, messages=[], progress=True)
    return Turn(request, run, AsyncExitStack(), settings=chat.settings, count=lambda *_: None)


async def test_only_the_answering_nodes_text_is_streamed(chat: Chat) -> None:
    events = [event async for event in turn_on(chat, two_node_graph()).stream()]
    texts = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert texts == "shown answer"
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert [m.content for m in done.output["messages"]][-2:] == ["hidden tool text", "shown answer"]


async def test_leaving_the_stream_cancels_the_run(chat: Chat) -> None:
    closed: list[str] = []
    stream = turn_on(chat, two_node_graph(hang=asyncio.Event(), closed=closed)).stream()
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    await asyncio.wait_for(stream.aclose(), timeout=5)
    assert closed == ["respond"]  # the node that was waiting was cancelled
