"""`/metrics` over real HTTP after real traffic: a fallback, a tool call, a stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp, free_port
from tests.fakes.upstream import FakeUpstream, Fault, Reply, ToolCallSpec
from tests.helpers import chat_body

Serve = Callable[[Settings], ServedApp]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

PRIMARY = "openai:gpt-a"
SECONDARY = "openai-compatible:gpt-b"


def scrape(app: ServedApp) -> Samples:
    """Every sample of `/metrics`, keyed by sample name and label set."""
    response = httpx.get(f"{app.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(key)[label] for (sample, key) in samples if sample == name and label in dict(key)}


def two_providers(
    make_settings: SettingsFactory, primary: FakeUpstream, secondary: FakeUpstream
) -> Settings:
    return make_settings(
        agent_models={"m": [PRIMARY, SECONDARY]},
        openai_base_url=primary.openai_base_url,
        openai_compatible_base_url=secondary.openai_base_url,
        provider_max_retries=0,
    )


def test_a_fallback_and_a_tool_call_show_up_in_the_metrics(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    # The primary fails both model calls of the turn; the secondary calls the calculator,
    # then answers with its result.
    primary.script(Fault.server_error(), Fault.server_error())
    secondary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "6*7"})], usage=(10, 3)),
        Reply("It is 42.", usage=(12, 2)),
    )
    app = serve(two_providers(make_settings, primary, secondary))
    before = scrape(app)
    assert (
        value(
            before, "agent_provider_requests_total", provider=SECONDARY, outcome="ok", error="none"
        )
        == 0
    )

    response = httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", "what is 6 times 7?"), model="m"),
        headers={"X-Thread-Id": "metrics-thread"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "It is 42."

    after = scrape(app)
    http = "agent_http_requests_total"
    assert value(after, http, method="POST", route="/v1/chat/completions", status="200") == 1
    assert (
        value(
            after,
            "agent_http_request_duration_seconds_count",
            method="POST",
            route="/v1/chat/completions",
        )
        == 1
    )

    # Providers: two failures of the primary, two answers of the secondary, two fallbacks.
    requests = "agent_provider_requests_total"
    assert value(after, requests, provider=PRIMARY, outcome="error", error="server_error") == 2
    assert value(after, requests, provider=SECONDARY, outcome="ok", error="none") == 2
    assert (
        value(
            after, "agent_provider_request_duration_seconds_count", provider=SECONDARY, outcome="ok"
        )
        == 2
    )
    fallbacks = "agent_provider_fallbacks_total"
    assert (
        value(after, fallbacks, from_provider=PRIMARY, to_provider=SECONDARY, reason="server_error")
        == 2
    )
    assert value(after, "agent_all_providers_failed_total") == 0

    # Tokens come from the upstream's usage, credited to the provider that answered.
    assert value(after, "agent_tokens_total", provider=SECONDARY, direction="input") == 22
    assert value(after, "agent_tokens_total", provider=SECONDARY, direction="output") == 5
    assert value(after, "agent_tokens_total", provider=PRIMARY, direction="input") == 0
    assert value(after, "agent_time_to_first_token_seconds_count", provider=SECONDARY) == 2

    # The tool, the router and every node that ran.
    assert value(after, "agent_tool_calls_total", tool="calculator", outcome="ok") == 1
    assert value(after, "agent_tool_duration_seconds_count", tool="calculator", outcome="ok") == 1
    assert value(after, "agent_router_decisions_total", route="model", reason="chat") == 1
    node = "agent_graph_node_duration_seconds_count"
    assert value(after, node, node="router", outcome="ok") == 1
    assert value(after, node, node="fallback_provider", outcome="ok") == 2
    assert value(after, node, node="tools", outcome="ok") == 1
    assert value(after, node, node="respond", outcome="ok") == 1

    # The thread was read and written through the instrumented checkpointer.
    checkpoint = "agent_checkpoint_duration_seconds_count"
    assert value(after, checkpoint, operation="read") > value(before, checkpoint, operation="read")
    # One checkpoint for the whole turn, tool round included (CHECKPOINT_DURABILITY=exit).
    assert value(after, checkpoint, operation="write") == 1
    assert value(after, "agent_build_info", version="0.1.0") == 1


def test_every_provider_failing_counts_an_exhausted_chain(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Fault.server_error())
    secondary.script(Fault.rate_limit(retry_after=0))
    app = serve(two_providers(make_settings, primary, secondary))

    response = httpx.post(
        f"{app.url}/v1/chat/completions", json=chat_body(("user", "hi"), model="m")
    )

    assert response.status_code == 502
    after = scrape(app)
    assert value(after, "agent_all_providers_failed_total") == 1
    assert (
        value(
            after,
            "agent_provider_requests_total",
            provider=SECONDARY,
            outcome="error",
            error="rate_limit",
        )
        == 1
    )
    assert (
        value(
            after,
            "agent_graph_node_duration_seconds_count",
            node="fallback_provider",
            outcome="error",
        )
        == 1
    )
    assert (
        value(
            after,
            "agent_http_requests_total",
            method="POST",
            route="/v1/chat/completions",
            status="502",
        )
        == 1
    )


def test_an_open_stream_is_an_active_stream_until_it_ends(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    primary.script(Reply("one two three four five six", chunk_delay=0.3))
    app = serve(two_providers(make_settings, primary, secondary))
    gauge = "agent_active_streams"
    seen_open: list[float] = []

    with httpx.stream(
        "POST",
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", "count"), model="m", stream=True),
        timeout=30,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: ") and not seen_open:
                seen_open.append(value(scrape(app), gauge, route="/v1/chat/completions"))

    assert seen_open == [1]
    assert value(scrape(app), gauge, route="/v1/chat/completions") == 0


def test_label_values_stay_bounded(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(make_settings())
    for thread in ("thread-one-secret", "thread-two-secret"):
        reply = httpx.post(
            f"{app.url}/v1/chat/completions",
            json=chat_body(("user", "echo hello")),
            headers={"X-Thread-Id": thread},
        )
        assert reply.status_code == 200
    for path in ("/nope/1", "/nope/2", "/v1/unknown-thing", "/.env"):
        assert httpx.get(f"{app.url}{path}").status_code == 404
    for model in ("offline", "no-such-model-abc"):
        httpx.get(f"{app.url}/v1/models/{model}")
    httpx.request("PROPFIND", f"{app.url}/v1/models")
    for asset in ("a-secret-name.js", "b-secret-name.css"):
        httpx.get(f"{app.url}/agent/playground/{asset}")

    text = httpx.get(f"{app.url}/metrics").text
    samples = scrape(app)
    routes = label_values(samples, "agent_http_requests_total", "route")
    assert routes <= {
        "/v1/chat/completions",
        "/v1/models",
        "/v1/models/{model_id:path}",
        "/agent/playground/{file_path:path}",
        "/metrics",
        "other",
    }
    assert "other" in routes
    assert label_values(samples, "agent_http_requests_total", "method") == {"GET", "POST", "other"}
    for leaked in (
        "thread-one",
        "thread-two",
        "nope",
        ".env",
        "no-such-model",
        "BREW",
        "echo hello",
    ):
        assert leaked not in text
    assert (
        value(samples, "agent_http_requests_total", method="GET", route="other", status="404") == 4
    )


def test_cache_lookups_are_counted_by_layer_and_outcome(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    body = chat_body(("user", "echo cached"), temperature=0)

    first = httpx.post(f"{app.url}/v1/chat/completions", json=body)
    second = httpx.post(f"{app.url}/v1/chat/completions", json=body)

    assert (first.headers.get("x-cache"), second.headers.get("x-cache")) == ("miss", "hit")
    samples = scrape(app)
    cache = "agent_cache_requests_total"
    assert value(samples, cache, layer="memory", outcome="miss") == 1
    assert value(samples, cache, layer="memory", outcome="hit") == 1
    assert value(samples, cache, layer="memory", outcome="store") == 1
    assert value(samples, "agent_cache_errors_total", layer="redis") == 0


def test_an_unreachable_redis_counts_cache_errors(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    body = chat_body(("user", "echo without redis"), temperature=0)

    assert httpx.post(f"{app.url}/v1/chat/completions", json=body).status_code == 200

    assert value(scrape(app), "agent_cache_errors_total", layer="redis") >= 1


def test_the_langserve_door_is_observed_like_the_openai_door(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())

    response = httpx.post(
        f"{app.url}/agent/invoke",
        json={"input": {"messages": [{"type": "human", "content": "what is 2+2?"}]}},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    samples = scrape(app)
    assert (
        value(
            samples, "agent_http_requests_total", method="POST", route="/agent/invoke", status="200"
        )
        == 1
    )
    assert value(samples, "agent_router_decisions_total", route="model", reason="chat") == 1
    assert value(samples, "agent_tool_calls_total", tool="calculator", outcome="ok") == 1
    assert (
        value(samples, "agent_graph_node_duration_seconds_count", node="respond", outcome="ok") == 1
    )


@pytest.mark.postgres
@pytest.mark.parametrize("durability", ["exit", "async"])
def test_checkpoint_reads_and_writes_on_postgres_are_timed(
    make_settings: SettingsFactory, serve: Serve, postgres_url: str, durability: Any
) -> None:
    app = serve(make_settings(database_url=postgres_url, checkpoint_durability=durability))
    before = scrape(app)

    reply = httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", "echo stored")),
        headers={"X-Thread-Id": "pg-metrics"},
    )

    assert reply.status_code == 200
    after = scrape(app)
    count = "agent_checkpoint_duration_seconds_count"

    def added(operation: str) -> float:
        return value(after, count, operation=operation) - value(before, count, operation=operation)

    # The door reads the thread to reconcile the request; LangGraph's start of the run gets
    # that same read instead of deserialising the thread again.
    assert added("read") == 1
    if durability == "exit":
        # The turn's one checkpoint, written when it ended; no step's writes on their own.
        assert (added("write"), added("write_pending")) == (1, 0)
    else:
        # A checkpoint after the input and after every step, each step's writes before it.
        assert added("write") >= 5
        assert added("write_pending") >= 4
    assert value(after, "agent_checkpoint_errors_total", operation="write") == 0
