"""A provider's reasoning reaches `/v1` clients, stays in the thread, and goes back upstream.

The service runs under uvicorn in front of the fake upstream (real HTTP both ways); the client
is the openai SDK. The fake sends reasoning as DeepSeek and vLLM do (`reasoning_content`, or
`reasoning`), and as Anthropic does (a signed `thinking` block); with `require_reasoning_echo`
it refuses, as DeepSeek does, a tool round whose assistant message lost its reasoning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage

from nodes.messages import is_client_message
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.fakes.upstream.anthropic_wire import thinking_signature
from tests.helpers import thread_messages

Serve = Callable[[Settings], ServedApp]

THOUGHT = "The user wants a sum. Two plus two is four."
ANSWER = "The answer is 4."
CALCULATE = ToolCallSpec("calculator", {"expression": "17 * 23"}, "call_calc")


def service(
    make_settings: SettingsFactory, serve: Serve, upstream: FakeUpstream, **extra: Any
) -> tuple[Settings, openai.OpenAI]:
    """The service with alias `m` (an OpenAI-compatible server) and `c` (Anthropic)."""
    settings = make_settings(
        agent_models={
            "m": ["openai-compatible:deep"],
            "c": ["anthropic:claude-fake"],
            "o": ["openai:gpt-fake"],
            "offline": ["offline"],
        },
        openai_compatible_base_url=upstream.openai_base_url,
        openai_base_url=upstream.openai_base_url,
        anthropic_base_url=upstream.anthropic_base_url,
        provider_max_retries=0,
        **extra,
    )
    app = serve(settings)
    return settings, openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)


def ask(
    client: openai.OpenAI, model: str, text: str, *, stream: bool, thread: str | None = None
) -> tuple[str, str | None, list[str]]:
    """(content, reasoning_content or None, order of the kinds of deltas seen) of one turn."""
    headers = {"X-Thread-Id": thread} if thread else {}
    messages: list[Any] = [{"role": "user", "content": text}]
    if not stream:
        completion = client.chat.completions.create(
            model=model, messages=messages, extra_headers=headers
        )
        message = completion.choices[0].message
        return message.content or "", getattr(message, "reasoning_content", None), []
    content, reasoning, order = "", None, []
    for chunk in client.chat.completions.create(
        model=model, messages=messages, stream=True, extra_headers=headers
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        piece = getattr(delta, "reasoning_content", None)
        if piece is not None:
            reasoning = (reasoning or "") + piece
            order.append("reasoning")
        if delta.content:
            content += delta.content
            order.append("content")
    return content, reasoning, order


def last_ai(messages: list[Any]) -> AIMessage:
    found = [m for m in messages if isinstance(m, AIMessage)]
    assert found
    return found[-1]


# ------------------------------------------------------------- reasoning to the client


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_reaches_the_client_and_stays_in_the_thread(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    stream: bool,
    field: Any,
) -> None:
    settings, client = service(make_settings, serve, primary)
    primary.script(Reply(ANSWER, reasoning=THOUGHT, reasoning_field=field))

    content, reasoning, order = ask(client, "m", "What is 2 + 2?", stream=stream, thread="t1")

    assert (content, reasoning) == (ANSWER, THOUGHT)
    if stream:  # every piece of reasoning comes before the answer, as DeepSeek sends it
        assert order.index("content") > 0
        assert set(order[: order.index("content")]) == {"reasoning"}
        assert "reasoning" not in order[order.index("content") :]
    stored = last_ai(await thread_messages(settings, "t1"))
    assert stored.content == ANSWER
    assert stored.additional_kwargs["reasoning_content"] == THOUGHT


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_show_reasoning_false_hides_it_from_clients_but_the_thread_keeps_it(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, stream: bool
) -> None:
    settings, client = service(make_settings, serve, primary, show_reasoning=False)
    primary.script(Reply(ANSWER, reasoning=THOUGHT))

    content, reasoning, order = ask(client, "m", "What is 2 + 2?", stream=stream, thread="t2")

    assert (content, reasoning) == (ANSWER, None)
    assert "reasoning" not in order
    stored = last_ai(await thread_messages(settings, "t2"))
    assert stored.additional_kwargs["reasoning_content"] == THOUGHT


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", ["m", "offline"], ids=["provider-without-reasoning", "offline"])
def test_an_answer_without_reasoning_has_no_reasoning_field(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    stream: bool,
    model: str,
) -> None:
    _, client = service(make_settings, serve, primary)
    primary.script(Reply(ANSWER))
    app_url = str(client.base_url).rstrip("/")
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}], "stream": stream}

    response = httpx.post(f"{app_url}/chat/completions", json=body, timeout=30)

    assert response.status_code == 200, response.text
    assert "reasoning_content" not in response.text
    assert "reasoning" not in response.text


# ------------------------------------------------------------- reasoning back upstream


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_tool_round_sends_the_reasoning_back_as_deepseek_requires(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, stream: bool
) -> None:
    _, client = service(make_settings, serve, primary)
    primary.require_reasoning_echo = True
    primary.script(
        Reply(reasoning="I should use the calculator.", tool_calls=[CALCULATE]),
        Reply("17 * 23 = 391.", reasoning="The tool says 391."),
    )

    content, reasoning, _ = ask(client, "m", "What is 17 * 23?", stream=stream)

    assert content == "17 * 23 = 391."
    assert reasoning == "I should use the calculator.\n\nThe tool says 391."
    follow_up = primary.requests[1].body
    assert follow_up is not None
    (assistant,) = [m for m in follow_up["messages"] if m["role"] == "assistant"]
    assert assistant["tool_calls"][0]["id"] == "call_calc"
    assert assistant["reasoning_content"] == "I should use the calculator."


def test_the_fake_refuses_a_tool_round_without_reasoning_as_deepseek_does(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    """The control: OpenAI's own kind sends no reasoning back, and the fake then says 400."""
    _, client = service(make_settings, serve, primary)
    primary.require_reasoning_echo = True
    primary.script(Reply(reasoning="I should use the calculator.", tool_calls=[CALCULATE]))

    with pytest.raises(openai.BadRequestError, match="reasoning_content"):
        ask(client, "o", "What is 17 * 23?", stream=False)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_anthropic_thinking_reaches_the_client_and_goes_back_signed(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, stream: bool
) -> None:
    settings, client = service(make_settings, serve, primary)
    first, second = "I should use the calculator.", "The tool says 391."
    primary.script(
        Reply(reasoning=first, tool_calls=[CALCULATE]),
        Reply("17 * 23 = 391.", reasoning=second),
    )

    content, reasoning, _ = ask(client, "c", "What is 17 * 23?", stream=stream, thread="a1")

    assert content == "17 * 23 = 391."
    assert reasoning == f"{first}\n\n{second}"
    follow_up = primary.requests[1].body
    assert follow_up is not None
    assert primary.requests[1].path == "/v1/messages"
    (assistant,) = [m for m in follow_up["messages"] if m["role"] == "assistant"]
    thinking, tool_use = assistant["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": first,
        "signature": thinking_signature(first),
    }
    assert (tool_use["type"], tool_use["id"]) == ("tool_use", "call_calc")
    stored = [m for m in await thread_messages(settings, "a1") if isinstance(m, AIMessage)]
    assert stored[0].additional_kwargs["thinking_blocks"] == [thinking]
    assert stored[-1].content == "17 * 23 = 391."  # plain text, as every provider's


# ------------------------------------------------------------- the client's resent history


async def test_a_resent_history_without_reasoning_continues_the_thread(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    settings, client = service(make_settings, serve, primary)
    primary.script(Reply(ANSWER, reasoning=THOUGHT), Reply("Six."))
    ask(client, "m", "What is 2 + 2?", stream=True, thread="r1")

    # Chat clients resend the answer as they showed it: without the reasoning.
    client.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": "And 3 + 3?"},
        ],
        extra_headers={"X-Thread-Id": "r1"},
    )

    stored = await thread_messages(settings, "r1")
    assert [m.type for m in stored] == ["human", "ai", "human", "ai"]
    answer = stored[1]
    assert not is_client_message(answer)  # the thread's own copy, not a fork from the client's
    assert answer.additional_kwargs["reasoning_content"] == THOUGHT


def test_progress_lines_and_the_models_reasoning_share_the_field(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    _, client = service(make_settings, serve, primary, progress_events=True)
    primary.script(Reply(ANSWER, reasoning=THOUGHT))

    content, reasoning, _ = ask(client, "m", "What is 2 + 2?", stream=True)

    assert content == ANSWER
    assert reasoning is not None
    assert reasoning.startswith("Route: model")  # the router's line comes first
    assert THOUGHT in reasoning


async def test_postgres_keeps_the_signed_thinking_blocks(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, postgres_url: str
) -> None:
    settings, client = service(make_settings, serve, primary, database_url=postgres_url)
    primary.script(Reply(reasoning="Use it.", tool_calls=[CALCULATE]), Reply("391."))

    content, _, _ = ask(client, "c", "What is 17 * 23?", stream=True, thread="pg1")

    assert content == "391."
    stored = [m for m in await thread_messages(settings, "pg1") if isinstance(m, AIMessage)]
    assert stored[0].additional_kwargs["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Use it.", "signature": thinking_signature("Use it.")}
    ]
    assert stored[0].additional_kwargs["reasoning_content"] == "Use it."
