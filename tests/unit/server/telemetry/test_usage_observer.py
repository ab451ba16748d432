"""What one answered model call counts: its key, alias and provider, at its endpoint's price."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from graph.context import Context
from graph.routing import COMPACT, FALLBACK_PROVIDER, ROUTER
from graph.state import State, Usage
from nodes.deps import AgentDeps
from nodes.providers.registry import Price
from server.stores.usage_ledger import UsageLedger
from server.stores.usage_table import Amount, month_start, open_sqlite_usage_store
from server.telemetry.metrics import Metrics
from server.telemetry.usage_observer import UsageObserver

PRICE = Price(input_per_million=3.0, output_per_million=15.0)


def answered(provider: str, tokens: tuple[int, int] | None) -> dict[str, Any]:
    """A fallback_provider update: the provider that answered, and its answer."""
    usage = None
    if tokens is not None:
        usage = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    return {"provider": provider, "messages": [AIMessage("ok", usage_metadata=usage)]}


def observer(deps: AgentDeps, metrics: Metrics, ledger: UsageLedger | None) -> UsageObserver:
    catalogue = deps.providers
    catalogue.configs = {
        **catalogue.configs,
        "openai": replace(catalogue.config("openai"), price=PRICE),
    }
    return UsageObserver(metrics, ledger, catalogue, keys={"k1", "anonymous"})


def report(
    usage: UsageObserver, node: str, update: dict[str, Any], context: Context | None
) -> None:
    state = State(messages=[HumanMessage("hi")])
    usage.node_finished(node, state, update, "ok", 0.1, context=context)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_call_is_counted_under_its_key_and_alias_at_its_price(
    agent_deps: Any, tmp_path: Path
) -> None:
    deps = agent_deps(
        ["openai:gpt-a", "openai-compatible:gpt-b"],
        {"openai": "http://x", "openai-compatible": "http://y"},
    )
    metrics = Metrics()
    async with open_sqlite_usage_store(tmp_path / "usage.sqlite") as store:
        ledger = UsageLedger(store)
        usage = observer(deps, metrics, ledger)
        report(
            usage, FALLBACK_PROVIDER, answered("openai:gpt-a", (1000, 100)), Context(caller="k1")
        )
        # The other endpoint has no price: its tokens count, its cost is nothing.
        report(
            usage,
            FALLBACK_PROVIDER,
            answered("openai-compatible:gpt-b", (5, 5)),
            Context(caller="k1", model="m"),
        )
        await ledger.flush()
        rows = await store.totals(since=month_start(datetime.now(UTC)), until=None, key_id=None)
    cost = PRICE.cost(1000, 100)
    tokens = "agent_usage_tokens_total"
    assert value(metrics, tokens, key="k1", model="m", direction="input") == 1005
    assert value(metrics, tokens, key="k1", model="m", direction="output") == 105
    assert value(metrics, "agent_usage_cost_usd_total", key="k1", model="m") == cost
    assert [(r.key_id, r.model, r.amount) for r in rows] == [
        ("k1", "m", Amount(2, 1005, 105, cost))
    ]


async def test_labels_stay_bounded_and_other_nodes_count_nothing(agent_deps: Any) -> None:
    deps = agent_deps(["openai:gpt-a"], {"openai": "http://x"})
    metrics = Metrics()
    usage = observer(deps, metrics, None)
    report(usage, FALLBACK_PROVIDER, answered("openai:gpt-a", (1, 1)), None)  # langgraph dev
    report(usage, FALLBACK_PROVIDER, answered("openai:gpt-a", (2, 2)), Context(caller="zz"))
    report(usage, FALLBACK_PROVIDER, answered("openai:gpt-a", (4, 4)), Context(model="nope"))
    report(usage, FALLBACK_PROVIDER, answered("openai:gpt-a", None), Context(caller="k1"))
    report(usage, ROUTER, {"route": "model"}, Context(caller="k1"))
    tokens = "agent_usage_tokens_total"
    assert value(metrics, tokens, key="anonymous", model="m", direction="input") == 1
    assert value(metrics, tokens, key="other", model="m", direction="input") == 2
    assert value(metrics, tokens, key="anonymous", model="other", direction="input") == 4
    assert value(metrics, tokens, key="k1", model="m", direction="input") == 0


async def test_the_compact_nodes_summary_calls_are_counted_at_their_price(
    agent_deps: Any,
) -> None:
    deps = agent_deps(["openai:gpt-a"], {"openai": "http://x"})
    metrics = Metrics()
    usage = observer(deps, metrics, None)
    earlier: Usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    state = State(messages=[HumanMessage("hi")], attempts=[], usage=earlier)
    summary_call = {"provider": "openai:gpt-a", "outcome": "ok", "error": None, "detail": None}
    update = {
        "attempts": [{**summary_call, "duration_ms": 5.0}],
        "usage": {"input_tokens": 1010, "output_tokens": 102, "total_tokens": 1112},
    }
    usage.node_finished(COMPACT, state, update, "ok", 0.1, context=Context(caller="k1"))
    usage.node_finished(COMPACT, state, {"prompt_tokens": {}}, "ok", 0.1, context=None)

    tokens = "agent_usage_tokens_total"
    assert value(metrics, tokens, key="k1", model="m", direction="input") == 1000
    assert value(metrics, tokens, key="k1", model="m", direction="output") == 100
    cost = value(metrics, "agent_usage_cost_usd_total", key="k1", model="m")
    assert cost == PRICE.cost(1000, 100)


async def test_a_retry_s_summary_calls_are_counted_beside_the_answer(agent_deps: Any) -> None:
    """After a context-length error the fallback_provider compacts again: both are paid for."""
    deps = agent_deps(["openai:gpt-a"], {"openai": "http://x"})
    metrics = Metrics()
    usage = observer(deps, metrics, None)
    earlier: Usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    state = State(messages=[HumanMessage("hi")], attempts=[], usage=earlier)
    call = {"provider": "openai:gpt-a", "error": None, "detail": None, "duration_ms": 5.0}
    update = {
        **answered("openai:gpt-a", (300, 30)),
        "attempts": [
            {**call, "outcome": "error", "error": "context_length"},  # refused: too long
            {**call, "outcome": "ok"},  # the summary call (1000 in, 100 out)
            {**call, "outcome": "ok"},  # the retry that answered (300 in, 30 out)
        ],
        "usage": {"input_tokens": 1310, "output_tokens": 132, "total_tokens": 1442},
    }
    usage.node_finished(FALLBACK_PROVIDER, state, update, "ok", 0.1, context=Context(caller="k1"))

    tokens = "agent_usage_tokens_total"
    assert value(metrics, tokens, key="k1", model="m", direction="input") == 1300
    assert value(metrics, tokens, key="k1", model="m", direction="output") == 130
    cost = value(metrics, "agent_usage_cost_usd_total", key="k1", model="m")
    assert cost == PRICE.cost(300, 30) + PRICE.cost(1000, 100)
    # Without a summary call, the answer alone is counted (nothing read off the difference).
    plain = Metrics()
    alone = observer(deps, plain, None)
    only = {**answered("openai:gpt-a", (7, 3)), "attempts": [{**call, "outcome": "ok"}]}
    only["usage"] = {"input_tokens": 17, "output_tokens": 5, "total_tokens": 22}
    alone.node_finished(FALLBACK_PROVIDER, state, only, "ok", 0.1, context=Context(caller="k1"))
    assert value(plain, tokens, key="k1", model="m", direction="input") == 7
