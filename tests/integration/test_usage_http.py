"""Operator keys, usage per key and model, and monthly budgets, over real HTTP.

The service runs in uvicorn; clients are the openai SDK (on `/v1`) and httpx (on `/admin`
and `/metrics`); providers are fake upstreams whose replies carry known usage. Endpoint
prices come from a provider file (AGENT_CONFIG) that declares the two endpoints (`prices`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from nodes.providers.registry import Price
from server.auth import digest
from server.settings import Settings
from server.stores.usage_ledger import FIRST_READ_TIMEOUT
from server.stores.usage_table import month_start, next_month
from server.wiring.state import AppState
from tests.conftest import SettingsFactory
from tests.fakes.postgres_cluster import PostgresCluster
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply, ToolCallSpec
from tests.helpers import priced_provider_file

Serve = Callable[[Settings], ServedApp]

KEY_A, KEY_B, KEY_C, ADMIN = "sk-client-a", "sk-client-b", "sk-client-c", "sk-operator"
ID_A, ID_B, ID_C, ID_ADMIN = (digest(k)[:16] for k in (KEY_A, KEY_B, KEY_C, ADMIN))

PRIMARY, SECONDARY = "openai:gpt-a", "openai-compatible:gpt-b"
PRIMARY_PRICE = Price(input_per_million=1.0, output_per_million=2.0)
SECONDARY_PRICE = Price(input_per_million=10.0, output_per_million=20.0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings of the store: SQLite by default, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


def keyed(
    make_settings: SettingsFactory,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    *,
    prices: Path | None = None,
    **extra: Any,
) -> Settings:
    """Three client keys, an admin key, and alias `m` on two fake providers."""
    return make_settings(
        api_keys=[SecretStr(KEY_A), SecretStr(KEY_B), SecretStr(KEY_C)],
        admin_api_keys=[SecretStr(ADMIN)],
        agent_models={"m": [PRIMARY, SECONDARY]},
        openai_base_url=primary.openai_base_url,
        openai_compatible_base_url=secondary.openai_base_url,
        provider_max_retries=0,
        agent_config=prices,
        **extra,
    )


@pytest.fixture
def prices(tmp_path: Path, primary: FakeUpstream, secondary: FakeUpstream) -> Path:
    """A provider file that declares both fake endpoints with their prices per million tokens."""
    return priced_provider_file(
        tmp_path / "agent.toml",
        {
            "openai": (primary.openai_base_url, PRIMARY_PRICE),
            "openai-compatible": (secondary.openai_base_url, SECONDARY_PRICE),
        },
        {"m": [PRIMARY, SECONDARY]},
    )


def app_state(app: ServedApp) -> AppState:
    """The running app's state, as its lifespan opened it (uvicorn keeps it)."""
    assert app.server is not None
    state: AppState = app.server.lifespan.state["agent"]
    return state


class Sdk:
    """An openai SDK client with its own key, counting the HTTP requests it sends."""

    def __init__(self, app: ServedApp, key: str) -> None:
        self.sent = 0
        # httpx2: the HTTP client the SDK is built on (it wraps a legacy httpx one too).
        self._http = httpx2.Client(event_hooks={"request": [self._count]}, timeout=30)
        # The SDK's default retries stay on: a spent quota must not be retried anyway.
        self.client = openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, http_client=self._http)

    def _count(self, request: httpx2.Request) -> None:
        self.sent += 1

    def ask(self, text: str, **options: Any) -> str:
        reply = self.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": text}], **options
        )
        return reply.choices[0].message.content or ""

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def sdk() -> Iterator[Callable[[ServedApp, str], Sdk]]:
    made: list[Sdk] = []

    def make(app: ServedApp, key: str) -> Sdk:
        made.append(Sdk(app, key))
        return made[-1]

    yield make
    for client in made:
        client.close()


def get(app: ServedApp, path: str, bearer: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.get(f"{app.url}{path}", headers=headers, params=params, timeout=30)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(app: ServedApp) -> Samples:
    response = get(app, "/metrics", ADMIN)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def openai_error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- admin keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/usage", "/admin/cache/stats", "/metrics"])
def test_operator_routes_take_admin_keys_only(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    path: str,
) -> None:
    app = serve(keyed(make_settings, primary, secondary))
    assert get(app, path, ADMIN).status_code == 200

    refused = get(app, path, KEY_A)
    assert refused.status_code == 403
    error = openai_error(refused)
    assert (error["type"], error["code"]) == ("permission_error", "permission_denied")

    for key, code in ((None, "missing_api_key"), ("sk-wrong", "invalid_api_key")):
        response = get(app, path, key)
        assert response.status_code == 401
        assert openai_error(response)["code"] == code


def test_an_admin_key_is_accepted_on_v1(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    sdk: Callable[[ServedApp, str], Sdk],
) -> None:
    app = serve(keyed(make_settings, primary, secondary))
    primary.script(Reply("Operator here.", usage=(3, 2)))
    assert sdk(app, ADMIN).ask("hello") == "Operator here."
    report = get(app, "/admin/usage", ADMIN).json()
    assert [(line["key"], line["total_tokens"]) for line in report["data"]] == [(ID_ADMIN, 5)]


def test_without_admin_keys_admin_takes_client_keys_and_metrics_stays_open(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=[SecretStr(KEY_A)]))
    assert get(app, "/admin/usage", KEY_A).status_code == 200
    assert get(app, "/admin/usage").status_code == 401
    assert get(app, "/metrics").status_code == 200


# --- usage ---------------------------------------------------------------------------------


def test_usage_per_key_and_model_is_priced_per_call_in_metrics_and_the_report(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    database: dict[str, Any],
    sdk: Callable[[ServedApp, str], Sdk],
    prices: Path,
) -> None:
    app = serve(keyed(make_settings, primary, secondary, prices=prices, **database))
    # Key A's turn makes two model calls on two providers: the primary asks for the
    # calculator, then fails; the secondary answers. Each call is priced at its endpoint.
    primary.script(
        Reply(tool_calls=[ToolCallSpec("calculator", {"expression": "6*7"})], usage=(10, 3)),
        Fault.server_error(),
    )
    secondary.script(Reply("It is 42.", usage=(12, 2)))
    assert sdk(app, KEY_A).ask("what is 6 times 7?") == "It is 42."
    # Key B's turn is streamed, on a thread, and answered by the primary.
    primary.script(Reply("Hi.", usage=(4, 1)))
    stream = sdk(app, KEY_B).client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"X-Thread-Id": "usage-thread"},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hi."

    cost_a = PRIMARY_PRICE.cost(10, 3) + SECONDARY_PRICE.cost(12, 2)
    cost_b = PRIMARY_PRICE.cost(4, 1)
    samples = scrape(app)
    tokens = "agent_usage_tokens_total"
    assert sample(samples, tokens, key=ID_A, model="m", direction="input") == 22
    assert sample(samples, tokens, key=ID_A, model="m", direction="output") == 5
    assert sample(samples, tokens, key=ID_B, model="m", direction="input") == 4
    assert sample(samples, tokens, key=ID_B, model="m", direction="output") == 1
    cost = "agent_usage_cost_usd_total"
    assert sample(samples, cost, key=ID_A, model="m") == pytest.approx(cost_a)
    assert sample(samples, cost, key=ID_B, model="m") == pytest.approx(cost_b)

    report = get(app, "/admin/usage", ADMIN)
    assert report.status_code == 200, report.text
    lines = {line["key"]: line for line in report.json()["data"]}
    assert set(lines) == {ID_A, ID_B}
    a, b = lines[ID_A], lines[ID_B]
    assert (a["model"], a["requests"], a["input_tokens"], a["output_tokens"]) == ("m", 2, 22, 5)
    assert (b["requests"], b["input_tokens"], b["output_tokens"], b["total_tokens"]) == (1, 4, 1, 5)
    assert a["cost_usd"] == pytest.approx(cost_a)
    assert b["cost_usd"] == pytest.approx(cost_b)
    assert report.json()["total"]["cost_usd"] == pytest.approx(cost_a + cost_b)

    only_b = get(app, "/admin/usage", ADMIN, key=digest(KEY_B)).json()["data"]
    assert [line["key"] for line in only_b] == [ID_B]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert get(app, "/admin/usage", ADMIN, since=tomorrow).json()["data"] == []
    today = datetime.now(UTC).date().isoformat()
    assert len(get(app, "/admin/usage", ADMIN, since=today, until=today).json()["data"]) == 2


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-01"}, "since"),
        ({"until": "2026-12-01T25:00"}, "until"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
        ({"until": "9999-12-31"}, "until"),  # the day after it is past the calendar
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"key": KEY_A}, "key"),
    ],
)
def test_a_bad_report_query_is_a_400_in_openais_shape(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    params: dict[str, str],
    param: str,
) -> None:
    app = serve(keyed(make_settings, primary, secondary))
    response = get(app, "/admin/usage", ADMIN, **params)
    assert response.status_code == 400
    error = openai_error(response)
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_request",
        param,
    )


# --- budgets -------------------------------------------------------------------------------


def test_a_key_over_its_budget_gets_insufficient_quota_until_the_month_ends(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    database: dict[str, Any],
    sdk: Callable[[ServedApp, str], Sdk],
    prices: Path,
) -> None:
    settings = keyed(
        make_settings,
        primary,
        secondary,
        prices=prices,
        key_budgets={ID_A: {"tokens": 20}},  # A: its own budget
        monthly_cost_budget=PRIMARY_PRICE.cost(15, 10) - 1e-6,  # B, C: the default
        **database,
    )
    app = serve(settings)
    a, b, c, admin = (sdk(app, key) for key in (KEY_A, KEY_B, KEY_C, ADMIN))

    primary.script(Reply("one", usage=(15, 10)), Reply("two", usage=(15, 10)))
    assert a.ask("spend 25 tokens") == "one"  # within budget when it started
    assert b.ask("spend a little money") == "two"

    for spent in (a, b):
        sent = spent.sent
        with pytest.raises(openai.RateLimitError) as caught:
            spent.ask("one more")
        assert caught.value.code == "insufficient_quota"
        assert caught.value.status_code == 429
        body = caught.value.body
        assert isinstance(body, dict)
        assert body["type"] == "insufficient_quota"
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert spent.sent == sent + 1  # the SDK did not retry
    assert len(primary.requests) == 2  # no provider was called for them

    primary.script(Reply("C is fine.", usage=(1, 1)), Reply("So is the operator.", usage=(1, 1)))
    assert c.ask("and me?") == "C is fine."
    assert admin.ask("and me?") == "So is the operator."  # the default is for client keys

    # A new month: the budgets start again (the ledger's clock is moved, not waited for).
    ledger = app_state(app).usage
    assert ledger is not None
    first_of_next = next_month(month_start(datetime.now(UTC)))
    ledger.clock = lambda: first_of_next + timedelta(seconds=1)
    primary.script(Reply("New month.", usage=(1, 1)), Reply("Me too.", usage=(1, 1)))
    assert a.ask("again") == "New month."
    assert b.ask("again") == "Me too."
    report = get(app, "/admin/usage", ADMIN, key=ID_A).json()
    assert report["since"].startswith(first_of_next.date().isoformat())
    assert [line["total_tokens"] for line in report["data"]] == [2]


def test_the_langserve_door_checks_the_budget_too(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
) -> None:
    app = serve(keyed(make_settings, primary, secondary, monthly_token_budget=10))
    primary.script(Reply("Spent.", usage=(8, 4)))
    headers = {"Authorization": f"Bearer {KEY_A}"}
    body = {"input": {"messages": [{"type": "human", "content": "hi"}]}}
    first = httpx.post(f"{app.url}/agent/invoke", json=body, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    second = httpx.post(f"{app.url}/agent/invoke", json=body, headers=headers, timeout=30)
    assert second.status_code == 429
    assert openai_error(second)["code"] == "insufficient_quota"


# --- PostgreSQL outage ---------------------------------------------------------------------


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)  # a sync test polling another process (the service), no event loop
    return check()


@pytest.mark.postgres
def test_a_postgres_outage_neither_fails_nor_slows_a_turn_and_loses_no_usage(
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    postgres_cluster: PostgresCluster,
    sdk: Callable[[ServedApp, str], Sdk],
) -> None:
    settings = keyed(
        make_settings,
        primary,
        secondary,
        database_url=postgres_cluster.url,
        database_pool_timeout=5.0,
        key_budgets={ID_A: {"tokens": 1000}},  # its checks read the table too
        usage_cache_seconds=0,
    )
    app = serve(settings)
    a = sdk(app, KEY_A)
    primary.script(Reply("before", usage=(2, 1)), Reply("during", usage=(3, 1)))
    assert a.ask("before the outage") == "before"

    postgres_cluster.halt()
    try:
        started = time.monotonic()
        assert a.ask("during the outage") == "during"  # stateless: no checkpoint needed
        # The budget check never waits for the pool (5 s here). It may wait FIRST_READ_TIMEOUT
        # if the first reading of the month has not come back yet (CI once saw the read before
        # the outage outlast it on a loaded machine), so the bound is that plus a margin, and
        # well under the pool's timeout: not a speed figure, a "did it wait for the pool".
        assert time.monotonic() - started < FIRST_READ_TIMEOUT + 1.5
        errors = "agent_usage_store_errors_total"
        assert _wait_for(lambda: sample(scrape(app), errors, operation="write") >= 1, 15)
    finally:
        postgres_cluster.resume()

    def written() -> bool:
        response = get(app, "/admin/usage", ADMIN, key=ID_A)
        return response.status_code == 200 and response.json()["total"]["total_tokens"] == 7

    assert _wait_for(written, 15)  # what was kept during the outage reached the table
