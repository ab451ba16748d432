"""Fallback across real providers: langchain-openai/anthropic clients against fake upstreams."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import StreamMode

from graph.context import Context
from graph.errors import AllProvidersFailedError, ProviderRejectedError, ProviderStreamBrokenError
from graph.prompts import SUMMARY_PROMPT
from graph.state import InputState
from nodes.providers.cooldown import InProcessCooldowns
from tests.factories import make_graph
from tests.fakes.server_thread import free_port
from tests.fakes.upstream import FakeUpstream, Fault, Reply, ToolCallSpec

PRIMARY = "openai:gpt-primary"
SECONDARY = "anthropic:claude-secondary"


def urls(primary: FakeUpstream, secondary: FakeUpstream) -> dict[str, str]:
    return {
        "openai": primary.openai_base_url,
        "anthropic": secondary.anthropic_base_url,
    }


async def ask(
    deps: Any, text: str = "hello", thread: str | None = None, *, stream: bool = False
) -> dict[str, Any]:
    """Run a turn; `stream`: with LangGraph's token stream on, so providers are streamed."""
    graph = make_graph(deps)
    config: RunnableConfig = {"configurable": {"thread_id": thread or uuid.uuid4().hex}}
    turn: InputState = {"messages": [HumanMessage(content=text)]}
    if not stream:
        return dict(await graph.ainvoke(turn, config, context=Context(model="m")))
    values: dict[str, Any] = {}
    modes: list[StreamMode] = ["messages", "values"]
    async for mode, payload in graph.astream(
        turn, config, context=Context(model="m"), stream_mode=modes
    ):
        if mode == "values":
            assert isinstance(payload, dict)
            values = dict(payload)
    return values


def outcomes(result: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["provider"], a["outcome"], a["error"]) for a in result["attempts"]]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.rate_limit(retry_after=0), "rate_limit"),
        (Fault.server_error(), "server_error"),
        (Fault.hang(3), "timeout"),
        (Fault.malformed_json(), "malformed"),
        (Fault.cut_stream("never mind", after_chunks=0), "connection"),
        (Fault.context_length(), "context_length"),
    ],
    ids=["429", "500", "hang", "malformed-json", "cut-before-tokens", "context-length"],
)
async def test_primary_failure_falls_through_to_secondary(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream, fault: Any, kind: str
) -> None:
    primary.script(fault)
    secondary.script(Reply("answer from the secondary"))
    # Long enough for a loaded CI machine, shorter than the 3 s hang.
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), timeout=1.5)

    result = await ask(deps)

    assert result["messages"][-1].content == "answer from the secondary"
    assert result["provider"] == SECONDARY
    assert outcomes(result) == [(PRIMARY, "error", kind), (SECONDARY, "ok", None)]
    assert len(primary.requests) == 1
    assert len(secondary.requests) == 1


async def test_connection_refused_falls_through(agent_deps: Any, secondary: FakeUpstream) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    secondary.script(Reply("still here"))
    deps = agent_deps(
        [PRIMARY, SECONDARY],
        {"openai": dead, "anthropic": secondary.anthropic_base_url},
    )

    result = await ask(deps)

    assert result["messages"][-1].content == "still here"
    assert outcomes(result) == [(PRIMARY, "error", "connection"), (SECONDARY, "ok", None)]


async def test_retryable_error_is_retried_on_the_same_provider(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.server_error(), Reply("second try worked"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=1)

    result = await ask(deps)

    assert result["messages"][-1].content == "second try worked"
    assert outcomes(result) == [(PRIMARY, "error", "server_error"), (PRIMARY, "ok", None)]
    assert secondary.requests == []


async def test_retry_after_beyond_the_limit_falls_through_at_once(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.rate_limit(retry_after=120))
    secondary.script(Reply("no waiting"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=3)

    result = await ask(deps)

    assert result["provider"] == SECONDARY
    assert len(primary.requests) == 1  # not retried: the wait would be 120 s


async def test_context_length_error_is_not_retried(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.context_length())
    secondary.script(Reply("bigger window"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=3)

    result = await ask(deps)

    assert result["provider"] == SECONDARY
    assert len(primary.requests) == 1


async def test_every_provider_down_is_a_clear_error(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.server_error())
    secondary.script(Fault.rate_limit(retry_after=0))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))

    with pytest.raises(AllProvidersFailedError) as caught:
        await ask(deps)

    message = str(caught.value)
    assert PRIMARY in message
    assert SECONDARY in message
    assert [a["error"] for a in caught.value.attempts] == ["server_error", "rate_limit"]


async def test_a_cooled_down_provider_is_skipped(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.server_error())
    secondary.script(Reply("first"), Reply("second"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), cooldown_failures=1)

    await ask(deps)
    result = await ask(deps)

    assert len(primary.requests) == 1  # the second run never called it
    assert outcomes(result) == [(PRIMARY, "skipped", "cooldown"), (SECONDARY, "ok", None)]
    assert result["messages"][-1].content == "second"


async def test_a_provider_is_tried_again_after_its_cooldown(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.server_error(), Reply("recovered"))
    secondary.script(Reply("fallback"))
    deps = agent_deps(
        [PRIMARY, SECONDARY], urls(primary, secondary), cooldown_failures=1, cooldown_seconds=0
    )

    await ask(deps)
    result = await ask(deps)

    assert result["provider"] == PRIMARY
    assert result["messages"][-1].content == "recovered"


async def test_a_stream_that_sent_tokens_never_switches_provider(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.cut_stream("the answer is forty", after_chunks=2))
    secondary.script(Reply("a different answer"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))

    with pytest.raises(ProviderStreamBrokenError):
        await ask(deps, stream=True)

    assert secondary.requests == []


async def test_anthropic_primary_falls_back_to_openai(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    secondary.script(Fault.rate_limit(retry_after=0))
    primary.script(Reply("from openai"))
    deps = agent_deps([SECONDARY, PRIMARY], urls(primary, secondary))

    result = await ask(deps)

    assert outcomes(result) == [(SECONDARY, "error", "rate_limit"), (PRIMARY, "ok", None)]


async def test_server_tool_round_trip_with_a_real_provider(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "17 * 23"})], usage=(10, 5)),
        Reply("It is 391.", usage=(20, 4)),
    )
    deps = agent_deps([PRIMARY], {"openai": primary.openai_base_url})

    result = await ask(deps, "What is 17 * 23?")

    messages = result["messages"]
    assert isinstance(messages[-3], AIMessage)
    assert messages[-3].tool_calls[0]["name"] == "calculator"
    assert isinstance(messages[-2], ToolMessage)
    assert messages[-2].content == "391"
    assert messages[-1].content == "It is 391."
    # The provider saw the tool result in the second call.
    second = primary.requests[1].body or {}
    assert any(m.get("role") == "tool" and m.get("content") == "391" for m in second["messages"])
    # Usage is the sum of both model calls.
    assert result["usage"] == {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39}


async def test_sampling_options_reach_the_provider(agent_deps: Any, primary: FakeUpstream) -> None:
    primary.script(Reply("ok"))
    deps = agent_deps([PRIMARY], {"openai": primary.openai_base_url})
    graph = make_graph(deps)

    await graph.ainvoke(
        {"messages": [HumanMessage(content="hi")]},
        {"configurable": {"thread_id": "t"}},
        context=Context(model="m", temperature=0.25, max_tokens=42, stop=["END"]),
    )

    body = primary.requests[0].body or {}
    assert body["temperature"] == 0.25
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 42
    assert body["stop"] == ["END"]


async def test_anthropic_stream_cut_before_tokens_falls_through(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    secondary.script(Fault.cut_stream("lost", after_chunks=0))
    primary.script(Reply("from openai"))
    deps = agent_deps([SECONDARY, PRIMARY], urls(primary, secondary))

    result = await ask(deps)

    assert outcomes(result) == [(SECONDARY, "error", "connection"), (PRIMARY, "ok", None)]


async def test_anthropic_stream_cut_after_tokens_is_a_broken_stream(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    secondary.script(Fault.cut_stream("half an answer here", after_chunks=2))
    deps = agent_deps([SECONDARY, PRIMARY], urls(primary, secondary))

    with pytest.raises(ProviderStreamBrokenError):
        await ask(deps, stream=True)

    assert primary.requests == []


async def test_a_short_retry_after_is_honoured_on_the_same_provider(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.rate_limit(retry_after=0.2), Reply("after waiting"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=1)

    result = await ask(deps)

    assert outcomes(result) == [(PRIMARY, "error", "rate_limit"), (PRIMARY, "ok", None)]
    assert result["messages"][-1].content == "after waiting"
    assert secondary.requests == []


@pytest.mark.parametrize("body", ["json", "empty", "html"])
async def test_an_upstream_that_does_not_stream_is_malformed_and_falls_through(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream, body: Any
) -> None:
    primary.script(Fault.not_streaming(body))
    secondary.script(Reply("a real stream"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))

    result = await ask(deps, stream=True)

    assert result["messages"][-1].content == "a real stream"
    assert outcomes(result) == [(PRIMARY, "error", "malformed"), (SECONDARY, "ok", None)]
    detail = result["attempts"][0]["detail"]
    assert PRIMARY in detail
    expected = {"json": "application/json", "empty": "no events", "html": "text/html"}[body]
    assert expected in detail


@pytest.mark.parametrize("body", ["empty", "html"])
async def test_a_whole_answer_that_is_not_json_is_malformed_and_falls_through(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream, body: Any
) -> None:
    # Nobody streams this turn: the provider is asked for one JSON completion, and gets an
    # event stream with no events, or a proxy's HTML page.
    primary.script(Fault.not_streaming(body))
    secondary.script(Reply("a real answer"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))

    result = await ask(deps)

    assert result["messages"][-1].content == "a real answer"
    assert outcomes(result) == [(PRIMARY, "error", "malformed"), (SECONDARY, "ok", None)]
    assert [r.stream for r in primary.requests] == [False]
    detail = result["attempts"][0]["detail"]
    assert PRIMARY in detail
    assert "instead of a JSON completion" in detail
    assert {"empty": "text/event-stream", "html": "text/html"}[body] in detail


async def test_a_whole_answer_cut_before_it_ends_falls_through(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    # Without a stream nothing reached the client, so any break may fall through.
    primary.script(Fault.cut_stream("the answer is forty", after_chunks=2))
    secondary.script(Reply("a different answer"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))

    result = await ask(deps)

    assert result["messages"][-1].content == "a different answer"
    assert outcomes(result)[0][:2] == (PRIMARY, "error")


async def test_a_provider_400_is_not_retried_and_the_next_provider_answers(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.status(400, message="Unsupported parameter: 'foo'"))
    secondary.script(Reply("the other one took it"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=3)

    result = await ask(deps)

    assert len(primary.requests) == 1
    assert outcomes(result) == [(PRIMARY, "error", "bad_request"), (SECONDARY, "ok", None)]


async def test_a_provider_409_is_retried(agent_deps: Any, primary: FakeUpstream) -> None:
    primary.script(Fault.status(409, message="conflict"), Reply("second time lucky"))
    deps = agent_deps([PRIMARY], {"openai": primary.openai_base_url}, max_retries=1)

    result = await ask(deps)

    assert outcomes(result) == [(PRIMARY, "error", "conflict"), (PRIMARY, "ok", None)]


async def test_every_provider_refusing_the_request_is_the_providers_own_error(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.status(400, message="Invalid value for 'temperature'"))
    secondary.script(Fault.status(404, message="model 'claude-secondary' not found"))
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=2)

    with pytest.raises(ProviderRejectedError) as caught:
        await ask(deps)

    assert caught.value.status == 404
    assert "model 'claude-secondary' not found" in caught.value.message
    assert SECONDARY in caught.value.message
    assert len(primary.requests) == 1
    assert len(secondary.requests) == 1


async def test_a_refusal_beside_an_outage_is_still_an_outage(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.status(400, message="bad"))
    secondary.script(Fault.server_error())
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))

    with pytest.raises(AllProvidersFailedError) as caught:
        await ask(deps)

    assert not isinstance(caught.value, ProviderRejectedError)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_when_every_provider_cools_down_the_first_to_recover_is_tried(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    clock = Clock()
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))
    deps.cooldowns = InProcessCooldowns(threshold=1, cooldown=60, clock=clock)
    await deps.cooldowns.record_failure(SECONDARY)  # cools until 1060
    clock.now += 5
    await deps.cooldowns.record_failure(PRIMARY)  # cools until 1065
    secondary.script(Reply("back already"))

    result = await ask(deps)

    assert result["messages"][-1].content == "back already"
    assert outcomes(result) == [(PRIMARY, "skipped", "cooldown"), (SECONDARY, "ok", None)]
    assert result["attempts"][1].get("half_open") is True
    assert "half_open" not in result["attempts"][0]
    assert primary.requests == []
    assert not await deps.cooldowns.is_cooling(SECONDARY)  # the success closed its breaker
    assert await deps.cooldowns.is_cooling(PRIMARY)


async def test_a_failed_half_open_trial_is_one_call_then_a_clear_error(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    clock = Clock()
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary), max_retries=3)
    deps.cooldowns = InProcessCooldowns(threshold=1, cooldown=60, clock=clock)
    await deps.cooldowns.record_failure(PRIMARY)
    clock.now += 1
    await deps.cooldowns.record_failure(SECONDARY)
    primary.script(Fault.server_error(), Reply("not reached"))

    with pytest.raises(AllProvidersFailedError) as caught:
        await ask(deps)

    assert len(primary.requests) == 1  # a trial is one call, never the retries
    assert secondary.requests == []
    assert [(a["provider"], a["outcome"]) for a in caught.value.attempts] == [
        (PRIMARY, "error"),
        (SECONDARY, "skipped"),
    ]
    assert caught.value.attempts[0]["half_open"] is True


async def test_a_context_length_error_is_retried_once_on_the_same_provider_compacted(
    agent_deps: Any, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    def summaries(request: Any) -> Reply | None:
        system = (request.body or {}).get("messages", [{}])[0].get("content", "")
        return Reply("SUMMARY: six questions") if SUMMARY_PROMPT in str(system) else None

    primary.responder = summaries
    deps = agent_deps([PRIMARY, SECONDARY], urls(primary, secondary))
    graph = make_graph(deps)
    config: Any = {"configurable": {"thread_id": "long"}}
    for n in range(6):
        await graph.ainvoke(
            {"messages": [HumanMessage(f"question {n}")]}, config, context=Context(model="m")
        )
    primary.script(Fault.context_length())

    result = await graph.ainvoke(
        {"messages": [HumanMessage("one more")]}, config, context=Context(model="m")
    )

    assert outcomes(result) == [
        (PRIMARY, "error", "context_length"),
        (PRIMARY, "ok", None),  # the summary call
        (PRIMARY, "ok", None),  # the retry, with the summary instead of the oldest turns
    ]
    retried = primary.requests[-1].body or {}
    contents = [m["content"] for m in retried["messages"]]
    assert any("SUMMARY: six questions" in c for c in contents)
    assert "question 0" not in contents
    assert contents[-1] == "one more"
    assert secondary.requests == []
    state = (await graph.aget_state(config)).values
    assert state["compacted"]["how"] == "summary"
    assert len(state["messages"]) == 14  # the thread keeps every message
    # The next turn is sent through the summary too, without compacting again.
    await graph.ainvoke(
        {"messages": [HumanMessage("and then")]}, config, context=Context(model="m")
    )
    sent = primary.requests[-1].body
    assert sent is not None
    assert any("SUMMARY: six questions" in m["content"] for m in sent["messages"])
    assert (await graph.aget_state(config)).values["compacted"] is None
