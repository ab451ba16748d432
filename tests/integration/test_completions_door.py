"""`/v1/completions` (the legacy text completions) as the openai SDK's `completions.create` uses it.

What LlamaIndex's `OpenAILike` and editors' autocomplete (Continue, with `suffix`) send,
over real HTTP: on the offline model, and on a fake upstream whose received request is
checked; the chat door's guards (keys, rate limit, budget) hold here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types import Completion
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from graph.prompts import FILL_HERE, FILL_IN_THE_MIDDLE, SYSTEM_PROMPT
from server.auth import digest
from server.chat import wire
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply

Serve = Callable[[Settings], ServedApp]

KEY, OTHER_KEY = "sk-complete-a", "sk-complete-b"


def sdk(app: ServedApp, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0)


def on_fake(make_settings: SettingsFactory, upstream: FakeUpstream, **extra: Any) -> Settings:
    return make_settings(
        agent_models={"m": ["openai:gpt-test"]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
        **extra,
    )


def events(response: httpx.Response) -> list[Any]:
    """Every `data:` event of an SSE body, JSON-decoded but for the final `[DONE]`."""
    frames = [f for f in response.text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames), response.text
    return [f[6:] if f[6:] == "[DONE]" else json.loads(f[6:]) for f in frames]


def post(app: ServedApp, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{app.url}/v1/completions", json=body, headers=headers, timeout=30)


def openai_error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- the offline model -----------------------------------------------------------------------


def test_a_prompt_is_answered_by_the_graph_as_a_text_completion(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())

    answer = sdk(app).completions.create(model="offline", prompt="What is 17 * 23?")

    assert answer.object == "text_completion"
    assert answer.id.startswith("cmpl-")
    assert answer.model == "offline"
    [choice] = answer.choices
    assert (choice.index, choice.logprobs, choice.finish_reason) == (0, None, "stop")
    assert choice.text == "17 * 23 = 391"  # the calculator ran: the same graph as chat
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    usage = answer.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_list_of_prompts_gets_n_choices_each_in_order(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())

    answer = sdk(app).completions.create(
        model="offline", prompt=["What is 2 + 3?", "echo bonjour"], n=2, echo=True
    )

    texts = [(c.index, c.text, c.finish_reason) for c in answer.choices]
    assert texts == [
        (0, "What is 2 + 3?2 + 3 = 5", "stop"),
        (1, "What is 2 + 3?2 + 3 = 5", "stop"),
        (2, "echo bonjourbonjour", "stop"),
        (3, "echo bonjourbonjour", "stop"),
    ]
    # Usage is the sum over every run of the request.
    singles = [
        sdk(app).completions.create(model="offline", prompt=p).usage
        for p in ("What is 2 + 3?", "echo bonjour")
    ]
    assert answer.usage is not None
    assert None not in singles
    for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert getattr(answer.usage, field) == 2 * sum(getattr(u, field) for u in singles)


def test_max_tokens_and_stop_cut_the_text_with_their_finish_reasons(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    client = sdk(app)

    cut = client.completions.create(model="offline", prompt="Hello", max_tokens=4)
    assert cut.choices[0].text == "I am the built-in"
    assert cut.choices[0].finish_reason == "length"
    stopped = client.completions.create(model="offline", prompt="Hello", stop=[" the"])
    assert stopped.choices[0].text == "I am"
    assert stopped.choices[0].finish_reason == "stop"


def test_a_stream_sends_text_completion_chunks_then_usage_then_done(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    whole = sdk(app).completions.create(model="offline", prompt="What is 6 * 7?")

    chunks = list(
        sdk(app).completions.create(
            model="offline",
            prompt="What is 6 * 7?",
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert all(c.object == "text_completion" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [reason for reason in finals if reason] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])
    # On the wire: `usage` is null on every chunk but the last, and `[DONE]` ends the stream.
    with httpx.stream(
        "POST",
        f"{app.url}/v1/completions",
        json={"model": "offline", "prompt": "hi", "stream": True, "max_tokens": 2},
        timeout=30,
    ) as response:
        response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    sent = events(response)
    assert sent[-1] == "[DONE]"
    assert all("usage" not in chunk for chunk in sent[:-1])  # not asked for: left out
    assert [c["choices"][0]["finish_reason"] for c in sent[:-1]] == [None, None, "length"]
    for chunk in sent[:-1]:
        wire.TextCompletion.model_validate(chunk)  # what the route declares


def test_a_streamed_list_of_prompts_sends_each_choice_with_its_index(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())

    chunks = list(
        sdk(app).completions.create(
            model="offline", prompt=["echo one", "echo two"], stream=True, echo=True
        )
    )

    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert texts == {0: "echo oneone", 1: "echo twotwo"}


def test_fill_in_the_middle_on_the_offline_model_completes_the_word_at_the_cursor(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    before = "def greet(name):\n    return 'hello ' + na"

    answer = sdk(app).completions.create(model="offline", prompt=before, suffix="\n\nprint(1)\n")
    assert answer.choices[0].text == "me"
    assert answer.choices[0].finish_reason == "stop"
    streamed = sdk(app).completions.create(
        model="offline", prompt=before, suffix="\n", stream=True, max_tokens=16
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "me"
    # Mid-word, or with no word to finish, nothing is inserted (never the offline notice).
    inside = sdk(app).completions.create(model="offline", prompt="x = na", suffix="me + 1")
    assert inside.choices[0].text == ""
    at_start = sdk(app).completions.create(model="offline", prompt="", suffix="print(1)\n")
    assert at_start.choices[0].text == ""


def test_completions_are_stateless_whatever_thread_the_client_names(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    client = openai.OpenAI(
        base_url=f"{app.url}/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"X-Thread-Id": "editor-1"},
    )

    client.completions.create(model="offline", prompt="remember the word pelican")
    raw = client.completions.with_raw_response.create(model="offline", prompt="What did I say?")

    assert "x-thread-id" not in raw.headers
    assert raw.parse().choices[0].text.startswith("This is the first message")
    stored = httpx.get(f"{app.url}/agent/threads/editor-1/state", timeout=30)
    assert stored.status_code == 404  # nothing was stored under the thread named


# --- a fake upstream -------------------------------------------------------------------------


def test_a_prompt_reaches_the_provider_as_one_user_message_with_the_sampling_fields(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply(" a test.", usage=(6, 3)))

    answer = sdk(app).completions.create(
        model="m",
        prompt="Say this is",
        max_tokens=7,
        stop=["\n\n"],
        temperature=0.3,
        top_p=0.9,
        seed=11,
        presence_penalty=0.5,
        user="llama-index",
    )

    assert answer.choices[0].text == " a test."
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (6, 3)
    [received] = primary.requests
    assert received.path == "/v1/chat/completions"
    sent = received.body or {}
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", SYSTEM_PROMPT),
        ("user", "Say this is"),
    ]
    assert 7 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert sent["stop"] == ["\n\n"]
    assert (sent["temperature"], sent["top_p"], sent["seed"]) == (0.3, 0.9, 11)
    assert sent["presence_penalty"] == 0.5


def test_fill_in_the_middle_reaches_the_provider_as_a_gap_to_fill_without_tools(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("a + b", usage=(40, 3)))

    chunks = list(
        sdk(app).completions.create(
            model="m",
            prompt="def add(a, b):\n    return ",
            suffix="\n\nprint(add(1, 2))\n",
            max_tokens=64,
            stop=["\n\n"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "".join(c.choices[0].text for c in chunks if c.choices) == "a + b"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (40, 3)
    [received] = primary.requests
    sent = received.body or {}
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", FILL_IN_THE_MIDDLE),
        ("user", f"def add(a, b):\n    return {FILL_HERE}\n\nprint(add(1, 2))\n"),
    ]
    assert "tools" not in sent  # a gap is filled with text: the server's tools are not offered
    assert sent["stop"] == ["\n\n"]


# What Continue's tab autocomplete sends on an `openai` provider: `/v1/completions`, streamed,
# with the prefix and suffix in a base model's template (`<fim_prefix>` for a model name it
# does not know) and no `suffix` field (`core/llm/llms/OpenAI.ts`, `_legacystreamComplete`).
CONTINUE_STOPS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>", "\n\n"]


def continue_autocomplete(model: str, before: str, after: str) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": f"<fim_prefix>{before}<fim_suffix>{after}<fim_middle>",
        "max_tokens": 256,
        "temperature": 0.01,
        "stop": CONTINUE_STOPS,
        "stream": True,
    }


def test_continues_autocomplete_request_is_filled_in_the_middle(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    offline = serve(make_settings())
    before = "def greet(name):\n    return 'hello ' + na"
    response = post(offline, continue_autocomplete("offline", before, "\n"))
    assert response.status_code == 200
    sent = events(response)
    assert "".join(c["choices"][0]["text"] for c in sent[:-1]) == "me"

    app = serve(on_fake(make_settings, primary))
    primary.script(Reply("a + b"))
    response = post(app, continue_autocomplete("m", "def add(a, b):\n    return ", "\n"))
    assert "".join(c["choices"][0]["text"] for c in events(response)[:-1]) == "a + b"
    body = primary.requests[-1].body or {}
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("system", FILL_IN_THE_MIDDLE),
        ("user", f"def add(a, b):\n    return {FILL_HERE}\n"),
    ]
    assert body["stop"] == CONTINUE_STOPS
    assert "tools" not in body


def test_a_provider_failure_is_openais_error_before_and_in_band_after_the_first_byte(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(on_fake(make_settings, primary))

    primary.script(Fault.server_error())
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(app).completions.create(model="m", prompt="hi")
    assert caught.value.status_code == 502
    assert caught.value.code == "all_providers_failed"

    primary.script(Fault.cut_stream("one two three four", after_chunks=2))
    response = post(app, {"model": "m", "prompt": "hi", "stream": True})
    assert response.status_code == 200
    sent = events(response)
    assert sent[-1] != "[DONE]"
    assert sent[-1]["error"]["code"] == "provider_stream_broken"
    assert "".join(c["choices"][0]["text"] for c in sent[:-1]).startswith("one")


# --- refusals --------------------------------------------------------------------------------


def test_an_unknown_model_is_a_404_like_on_the_chat_route(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(app).completions.create(model="gpt-nope", prompt="hi")
    assert caught.value.code == "model_not_found"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["param"] == "model"


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"prompt": [1, 2, 3]}, "prompt", "invalid_request"),
        ({"prompt": [[1, 2], [3]]}, "prompt", "invalid_request"),
        ({"prompt": []}, "prompt", "invalid_request"),
        ({"prompt": 5}, "prompt", "invalid_request"),
        ({"prompt": ["ok", None]}, "prompt[1]", "invalid_request"),
        ({"prompt": None}, "prompt", "invalid_request"),
        ({"prompt": "x", "logprobs": 1}, "logprobs", "unsupported_parameter"),
        ({"prompt": "x", "best_of": 3}, "best_of", "unsupported_value"),
        ({"prompt": ["x"] * 5, "n": 4}, "n", "unsupported_value"),
        ({"prompt": ["x"] * 17}, "prompt", "unsupported_value"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens", "invalid_request"),
        ({"prompt": "x", "stream": "yes"}, "stream", "invalid_request"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_parameter(
    make_settings: SettingsFactory,
    serve: Serve,
    extra: dict[str, Any],
    param: str,
    code: str,
) -> None:
    app = serve(make_settings())
    response = post(app, {"model": "offline", **extra})
    assert response.status_code == 400, response.text
    error = openai_error(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_the_sdk_raises_bad_request_for_a_prompt_of_token_ids(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(app).completions.create(model="offline", prompt=[15496, 11, 995])
    assert "token ids" in caught.value.message


def test_keys_are_required_as_on_the_chat_route(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=[SecretStr(KEY)]))
    with pytest.raises(openai.AuthenticationError):
        sdk(app, "sk-wrong").completions.create(model="offline", prompt="hi")
    missing = post(app, {"model": "offline", "prompt": "hi"})
    assert missing.status_code == 401
    assert openai_error(missing)["code"] == "missing_api_key"
    assert sdk(app, KEY).completions.create(model="offline", prompt="echo in").choices[0].text


def test_the_rate_limit_counts_completions_with_the_chat_route(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    from tests.integration.test_rate_limits import clear_of_a_minute_boundary

    app = serve(make_settings(api_keys=[SecretStr(KEY), SecretStr(OTHER_KEY)], rate_limit_rpm=2))
    client = sdk(app, KEY)
    clear_of_a_minute_boundary()

    first = client.completions.with_raw_response.create(model="offline", prompt="echo a")
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    client.chat.completions.create(model="offline", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as caught:
        client.completions.create(model="offline", prompt=["echo b", "echo c"])
    assert caught.value.code == "rate_limit_exceeded"
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 120
    assert sdk(app, OTHER_KEY).completions.create(model="offline", prompt="echo d").choices


def test_a_spent_budget_refuses_completions_and_their_usage_is_counted(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    admin = "sk-complete-admin"
    app = serve(
        on_fake(
            make_settings,
            primary,
            api_keys=[SecretStr(KEY)],
            admin_api_keys=[SecretStr(admin)],
            monthly_token_budget=30,
        )
    )
    primary.script(Reply("one", usage=(15, 10)), Reply("two", usage=(4, 2)))

    answer = sdk(app, KEY).completions.create(model="m", prompt=["a", "b"])
    # The two runs go side by side: which one the fake answers first is not fixed.
    assert sorted(c.text for c in answer.choices) == ["one", "two"]
    assert answer.usage is not None
    assert answer.usage.total_tokens == 31

    with pytest.raises(openai.RateLimitError) as caught:
        sdk(app, KEY).completions.create(model="m", prompt="one more")
    assert caught.value.code == "insufficient_quota"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(primary.requests) == 2  # refused before any provider call
    auth = {"Authorization": f"Bearer {admin}"}
    report = httpx.get(f"{app.url}/admin/usage", headers=auth, timeout=30).json()
    [line] = report["data"]
    assert (line["key"], line["model"], line["total_tokens"]) == (digest(KEY)[:16], "m", 31)
    scraped = httpx.get(f"{app.url}/metrics", headers=auth, timeout=30).text
    routes = {
        (s.labels.get("route"), s.labels.get("status"))
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == "agent_http_requests_total"
    }
    assert {("/v1/completions", "200"), ("/v1/completions", "429")} <= routes


def test_openapi_declares_the_completion_and_its_stream(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    doc = httpx.get(f"{app.url}/openapi.json", timeout=30).json()

    route = doc["paths"]["/v1/completions"]["post"]
    responses = route["responses"]
    ok = responses["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/TextCompletion")
    item = ok["content"]["text/event-stream"]["itemSchema"]
    assert item["properties"]["data"]["contentSchema"]["title"] == "TextCompletion"
    errors = {"400", "401", "403", "404", "413", "415", "422", "429", "500", "502", "503"}
    assert set(responses) == {"200"} | errors
    for status in errors:
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorResponse"
        )
    body = route["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/CompletionRequest")
    # What the route sends is what it declares (the models refuse undeclared fields).
    sent = post(app, {"model": "offline", "prompt": "echo x"}).json()
    assert wire.TextCompletion.model_validate(sent).model_dump() == sent
    assert Completion.model_validate(sent).choices[0].text == "x"  # and the SDK's model
