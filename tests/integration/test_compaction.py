"""Long threads through the service on a model with a tiny window: compaction keeps them going.

The endpoint declares a 4000-token window (its `context_window` in the provider file), of which the
built-in tools' schemas take about 1300, and the fake upstream refuses any prompt whose
messages pass 2000 words (`max_prompt_tokens`, in OpenAI's and Anthropic's error shapes), so
a thread that outgrew it without compaction would fail there (300 turns are about 2700
words). Summary calls are told apart from chat calls by their system prompt and answered
`SUMMARY <n>`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from graph.prompts import SUMMARY_PROMPT
from nodes.compaction.prompt import SUMMARY_HEADING
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, RecordedRequest, Reply, ToolCallSpec
from tests.helpers import thread_values

Serve = Callable[[Settings], ServedApp]
WINDOW = 4000
WORDS = 2000
TURNS = 300


def question(n: int) -> str:
    return f"turn {n}: tell me one more thing about topic {n}"


def is_summary_call(request: RecordedRequest) -> bool:
    body = request.body or {}
    system = body.get("system")
    if system is None:  # OpenAI: the first message
        first = (body.get("messages") or [{}])[0]
        system = first.get("content") if first.get("role") == "system" else None
    text = system if isinstance(system, str) else str(system)
    return SUMMARY_PROMPT in text


def summarising(upstream: FakeUpstream) -> None:
    """Answer summary calls with a numbered summary; chat calls get the default `ok`."""
    count = 0

    def respond(request: RecordedRequest) -> Reply | None:
        nonlocal count
        if not is_summary_call(request):
            return None
        count += 1
        return Reply(f"SUMMARY {count}: the user asked about many topics.")

    upstream.responder = respond
    upstream.max_prompt_tokens = WORDS


def chat_calls(upstream: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in upstream.requests if not is_summary_call(r)]


def summary_calls(upstream: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in upstream.requests if is_summary_call(r)]


def texts(request: RecordedRequest) -> list[str]:
    """The content of every message (and Anthropic's system) of a recorded request."""
    body = request.body or {}
    found = [str(m.get("content")) for m in body.get("messages", [])]
    return [str(body["system"]), *found] if "system" in body else found


def sdk(app: ServedApp, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{app.url}/v1", api_key="unused", max_retries=0, default_headers=headers
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Any:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return lambda **overrides: make_settings(database_url=url, **overrides)
    return make_settings


def tiny_window(factory: SettingsFactory, tmp_path: Path, upstream: FakeUpstream) -> Settings:
    """Settings whose alias `m` is one endpoint of `WINDOW` tokens on `upstream`."""
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[endpoints.small]
kind = "openai-compatible"
base_url = "{upstream.openai_base_url}"
retries = 0
context_window = {WINDOW}

[models]
m = ["small:gpt-test"]
""",
        encoding="utf-8",
    )
    return factory(agent_config=path)


async def test_a_300_turn_thread_never_fails_and_is_summarised(
    store_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, tmp_path: Path
) -> None:
    summarising(primary)
    settings = tiny_window(store_settings, tmp_path, primary)
    client = sdk(serve(settings), **{"X-Thread-Id": "long"})

    for n in range(1, TURNS + 1):
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question(n)}]
        )
        assert reply.choices[0].message.content == "ok", n

    summaries = summary_calls(primary)
    assert summaries, "a thread this long must have been summarised"
    # Each summary builds on the one before it.
    assert any("SUMMARY 1:" in " ".join(texts(r)) for r in summaries[1:])
    last = chat_calls(primary)[-1]
    sent = texts(last)
    assert sent[-1] == question(TURNS)
    assert any(SUMMARY_HEADING in t and "SUMMARY " in t for t in sent)
    assert question(1) not in sent
    # The uncompacted prompt would be ~2700 words; every one sent fitted the window.
    assert len(chat_calls(primary)) == TURNS

    stored = await thread_values(settings, "long")
    assert len(stored["messages"]) == 2 * TURNS  # the thread keeps everything
    assert stored["messages"][0].content == question(1)
    assert stored["summary"]["through"] in {m.id for m in stored["messages"]}
    assert stored["prompt_tokens"]["estimated"] <= WINDOW


def history(turns: int, *, edit: int | None = None) -> list[ChatCompletionMessageParam]:
    """What a chat UI resends: every turn so far (answers `ok`), the last one unanswered."""
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "You are terse."}]
    for n in range(1, turns + 1):
        text = f"{question(n)} (edited)" if n == edit else question(n)
        messages.append({"role": "user", "content": text})
        if n < turns:
            messages.append({"role": "assistant", "content": "ok"})
    return messages


def test_a_chat_ui_resending_300_turns_is_answered(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, tmp_path: Path
) -> None:
    summarising(primary)
    app = serve(tiny_window(make_settings, tmp_path, primary))
    webui = sdk(app, **{"X-OpenWebUI-Chat-Id": "webui-chat"})

    for turns in (TURNS, TURNS + 1, TURNS + 2):  # seeded at once, then two more turns
        reply = webui.chat.completions.create(model="m", messages=history(turns))
        assert reply.choices[0].message.content == "ok"
        sent = texts(chat_calls(primary)[-1])
        assert sent[0] == "You are terse."
        assert any(SUMMARY_HEADING in t for t in sent)
        assert sent[-1] == question(turns)

    # Stateless (no thread at all): the whole history is compacted for this one run.
    before = len(summary_calls(primary))
    reply = sdk(app).chat.completions.create(model="m", messages=history(TURNS))
    assert reply.choices[0].message.content == "ok"
    assert len(summary_calls(primary)) > before


def test_a_fork_gets_the_prompt_of_its_own_branch(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, tmp_path: Path
) -> None:
    summarising(primary)
    settings = tiny_window(make_settings, tmp_path, primary)
    client = sdk(serve(settings), **{"X-Thread-Id": "forked"})
    summaries_by_turn: dict[int, int] = {}
    for turns in range(1, 121):
        client.chat.completions.create(model="m", messages=history(turns))
        summaries_by_turn[turns] = len(summary_calls(primary))
    assert summaries_by_turn[9] == 0, "turn 9 was not compacted yet"
    assert summaries_by_turn[120] >= 2, "the thread was compacted more than once"

    # An edit of the turn that made the newest summary: the fork starts from the turn
    # before, and carries that checkpoint's summary (or one built on it), never the newest.
    newest = summaries_by_turn[120]
    edited = max(t for t in range(2, 121) if summaries_by_turn[t - 1] < newest)
    base = summaries_by_turn[edited - 1]
    client.chat.completions.create(model="m", messages=history(edited, edit=edited))
    sent = texts(chat_calls(primary)[-1])
    notes = [t for t in sent if SUMMARY_HEADING in t]
    assert len(notes) == 1
    number = int(notes[0].split("SUMMARY ", 1)[1].split(":", 1)[0])
    assert number == base or number > newest
    if number > newest:  # compacted again in the fork: on the base's summary
        assert f"Summary so far:\nSUMMARY {base}:" in texts(summary_calls(primary)[-1])[-1]
    assert sent[-1] == f"{question(edited)} (edited)"
    assert question(edited) not in sent
    assert sent[-3] == question(edited - 1)

    # The user edits turn 10: a fork from the checkpoint of turn 9, which had no summary.
    client.chat.completions.create(model="m", messages=history(10, edit=10))
    sent = texts(chat_calls(primary)[-1])
    assert sent == [
        "You are terse.",
        *[t for n in range(1, 10) for t in (question(n), "ok")],
        f"{question(10)} (edited)",
    ]


def test_tool_output_that_outgrows_the_window_is_sent_cut_short(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, tmp_path: Path
) -> None:
    summarising(primary)
    long_text = " ".join(f"w{i}" for i in range(4000))  # ~16 000 characters, ~5 300 tokens
    primary.script(
        Reply(tool_calls=[ToolCallSpec("echo", {"text": long_text}, id="call_1")]),
        Reply("It was long."),
    )
    client = sdk(serve(tiny_window(make_settings, tmp_path, primary)), **{"X-Thread-Id": "tool"})

    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "echo this long text"}]
    )

    assert reply.choices[0].message.content == "It was long."
    after_tool = primary.requests[-1].body or {}
    (result,) = [m for m in after_tool["messages"] if m["role"] == "tool"]
    assert result["tool_call_id"] == "call_1"
    assert result["content"].startswith("w0 w1 w2")
    assert "characters left out to fit the context window" in result["content"]
    assert len(result["content"]) < len(long_text) / 2


@pytest.mark.parametrize("stream", [False, True])
def test_a_context_length_error_compacts_harder_and_retries_the_same_provider(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    stream: bool,
) -> None:
    summarising(primary)
    primary.max_prompt_tokens = None
    # An 8192-token window (a model of no known family): nothing is compacted up front, and
    # the model refuses the prompt anyway.
    settings = make_settings(
        agent_models={"m": ["openai:gpt-test", "anthropic:claude-test"]},
        openai_base_url=primary.openai_base_url,
        anthropic_base_url=secondary.anthropic_base_url,
    )
    app = serve(settings)
    client = sdk(app, **{"X-Thread-Id": "refused"})
    for n in range(1, 31):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question(n)}]
        )
    assert summary_calls(primary) == []

    primary.script(Fault.context_length(limit=WORDS, requested=WORDS + 1))
    if stream:
        chunks = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question(31)}], stream=True
        )
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question(31)}]
        )
        answer = reply.choices[0].message.content or ""

    assert answer == "ok"  # the summary never reaches the client as the answer
    refused, summary, retried = primary.requests[-3:]
    assert not is_summary_call(refused)
    assert is_summary_call(summary)
    assert not is_summary_call(retried)
    assert len(texts(retried)) < len(texts(refused)) / 2
    assert any(SUMMARY_HEADING in t for t in texts(retried))
    assert secondary.requests == []  # retried on the same provider, not fallen through
    metrics = httpx.get(f"{app.url}/metrics").text
    assert 'agent_compactions_total{outcome="summarised"} 1.0' in metrics
    assert 'agent_compaction_prompt_tokens_count{stage="before"} 1.0' in metrics
    assert 'agent_compaction_prompt_tokens_count{stage="after"} 1.0' in metrics


async def test_anthropics_too_long_prompt_is_retried_compacted(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    summarising(primary)
    primary.max_prompt_tokens = None
    settings = make_settings(  # Claude's 200k window: nothing is compacted up front
        agent_models={"m": ["anthropic:claude-test"]},
        anthropic_base_url=primary.anthropic_base_url,
        anthropic_api_key="test",
    )
    client = sdk(serve(settings), **{"X-Thread-Id": "anthropic"})
    for n in range(1, 21):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question(n)}]
        )
    primary.script(Fault.context_length(limit=200_000, requested=208_310))

    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": question(21)}]
    )

    assert reply.choices[0].message.content == "ok"
    refused, summary, retried = primary.requests[-3:]
    assert refused.path == retried.path == "/v1/messages"
    assert is_summary_call(summary)
    assert any(SUMMARY_HEADING in t for t in texts(retried))
    stored = await thread_values(settings, "anthropic")
    assert stored["compacted"]["how"] == "summary"
    assert len(stored["messages"]) == 42
