"""Request ids, route templates, the JSON formatter and the checkpoint wrapper, in isolation."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from server.telemetry.logging import (
    JsonFormatter,
    RedactingFilter,
    RequestContextFilter,
    RequestInfo,
    current_request,
    hash_thread_id,
    library_level,
)
from server.telemetry.metrics import Metrics
from server.telemetry.middleware import request_id_from, route_template
from server.telemetry.saver import InstrumentedSaver
from tests.factories import make_deps, make_graph


def headers(**values: str) -> Headers:
    return Headers({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize("given", ["abc-123", "0f9c2c7e6c3b4b0d9a6e", "req.1:2_3"])
def test_a_sane_client_request_id_is_kept(given: str) -> None:
    assert request_id_from(headers(x_request_id=given)) == given


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, "new\nline", "ünï"])
def test_an_insane_client_request_id_is_replaced(given: str) -> None:
    made = request_id_from(headers(x_request_id=given))
    assert made != given
    assert len(made) == 32


def test_route_templates_include_mount_points_and_unmatched_is_other() -> None:
    seen: list[str] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        seen.append(route_template(request.scope))
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/items/{item_id}", endpoint)])
    app = Starlette(routes=[Route("/v1/models/{model_id}", endpoint), Mount("/sub", app=inner)])
    with TestClient(app) as client:
        client.get("/v1/models/secret-model")
        client.get("/sub/items/42")

    assert seen == ["/v1/models/{model_id}", "/sub/items/{item_id}"]
    assert route_template({"type": "http", "path": "/nope"}) == "other"


def test_json_lines_carry_the_request_and_never_the_raw_thread_id() -> None:
    record = logging.LogRecord("server.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    token = current_request.set(
        RequestInfo(request_id="rid-1", method="POST", route="/v1/x", thread=hash_thread_id("t1"))
    )
    try:
        RequestContextFilter().filter(record)
    finally:
        current_request.reset(token)
    record.duration_ms = 1.5

    entry = json.loads(JsonFormatter().format(record))

    assert entry["message"] == "hello you"
    assert entry["level"] == "warning"
    assert entry["logger"] == "server.x"
    assert entry["time"].endswith("Z")
    assert entry["request_id"] == "rid-1"
    assert entry["route"] == "/v1/x"
    assert entry["thread_hash"] == hash_thread_id("t1") != "t1"
    assert entry["duration_ms"] == 1.5
    assert "thread" not in entry  # LogRecord's own thread id stays out


def test_exceptions_are_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


async def test_the_instrumented_saver_times_reads_and_writes_and_keeps_state() -> None:
    metrics = Metrics()
    inner = InMemorySaver()
    saver = InstrumentedSaver(inner, metrics)
    deps = make_deps(["offline"], {})
    graph = make_graph(deps).copy({"checkpointer": saver})
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}

    await graph.ainvoke({"messages": [HumanMessage("echo hi")]}, config)
    state = await graph.aget_state(config)

    assert [m.type for m in state.values["messages"]][:1] == ["human"]
    assert inner.get_tuple(config) is not None  # stored in the real saver
    text = metrics.exposition().decode()
    for operation in ("read", "write", "write_pending"):
        assert f'agent_checkpoint_duration_seconds_count{{operation="{operation}"}}' in text
    await deps.providers.aclose()


def test_each_app_counts_on_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()  # a global registry would raise "Duplicated timeseries"
    first.cache_request("memory", "hit")

    assert b'agent_cache_requests_total{layer="memory",outcome="hit"} 1.0' in first.exposition()
    assert b"agent_cache_requests_total{" not in second.exposition()
    assert not [name for name in REGISTRY._names_to_collectors if name.startswith("agent_")]


def test_a_cache_error_event_counts_as_a_lookup_and_an_error() -> None:
    metrics = Metrics()
    metrics.observe("redis", "error")
    text = metrics.exposition().decode()
    assert 'agent_cache_requests_total{layer="redis",outcome="error"} 1.0' in text
    assert 'agent_cache_errors_total{layer="redis"} 1.0' in text


def test_a_watched_pool_is_read_at_each_scrape() -> None:
    metrics = Metrics()
    stats = {"pool_min": 4, "pool_max": 10, "pool_size": 4, "pool_available": 3}
    metrics.watch_pool(lambda: stats)

    first = metrics.exposition().decode()
    stats.update(pool_size=6, requests_waiting=2, connections_lost=4, requests_wait_ms=1500)
    second = metrics.exposition().decode()

    assert "agent_db_pool_size 4.0" in first
    assert "agent_db_pool_connections_lost_total 0.0" in first  # psycopg_pool omits zeros
    assert "agent_db_pool_size 6.0" in second
    assert "agent_db_pool_requests_waiting 2.0" in second
    assert "agent_db_pool_connections_lost_total 4.0" in second
    assert "agent_db_pool_request_wait_seconds_total 1.5" in second


def test_the_log_filter_redacts_message_arguments_and_tracebacks() -> None:
    try:
        raise ValueError("for url 'http://h/x?token=t0ken'")
    except ValueError as error:
        record = logging.LogRecord(
            "httpx",
            logging.INFO,
            __file__,
            1,
            "HTTP Request: %s",
            ("GET http://h/x?token=t0ken",),
            (type(error), error, error.__traceback__),
        )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "HTTP Request: GET http://h/x"
    assert record.exc_text is not None
    assert "t0ken" not in record.exc_text
    assert "http://h/x" in record.exc_text


def test_third_party_loggers_never_go_below_info() -> None:
    assert [library_level(level) for level in ("debug", "info", "warning")] == [
        "info",
        "info",
        "warning",
    ]
