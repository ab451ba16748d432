"""The graph's long-term memory: the store given to `build_graph` is every node's `runtime.store`.

The real wiring (`build_graph`) is compiled with a store, its `respond` node wrapped by this
test so that, before answering as always, it counts the turns it closed in the store: a count
kept across threads shows that the node's `runtime.store` on one thread holds what it wrote
on another. The agent's nodes themselves are unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

import graph.builder
from graph.builder import build_graph
from graph.context import Context
from graph.state import State
from nodes.respond import respond
from tests.factories import make_deps

NAMESPACE = ("turns",)


@pytest.fixture
def stores_seen(monkeypatch: pytest.MonkeyPatch) -> list[BaseStore | None]:
    """The `runtime.store` of every turn `respond` closes (which counts them in it)."""
    seen: list[BaseStore | None] = []

    async def counting_respond(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        store = runtime.store
        seen.append(store)
        if store is not None:
            item = await store.aget(NAMESPACE, "count")
            await store.aput(NAMESPACE, "count", {"n": (item.value["n"] if item else 0) + 1})
        return await respond(state)

    monkeypatch.setattr(graph.builder, "respond", counting_respond)
    return seen


async def _turn(agent: Any, text: str, thread: str) -> dict[str, Any]:
    output: dict[str, Any] = await agent.ainvoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}
    )
    return output


async def test_a_node_reads_on_one_thread_what_it_wrote_on_another(
    stores_seen: list[BaseStore | None],
) -> None:
    deps = make_deps(["offline"], {})
    store = InMemoryStore()
    agent = build_graph(lambda: deps, checkpointer=InMemorySaver(), store=store)
    try:
        first = await _turn(agent, "echo one", "a")
        second = await _turn(agent, "echo two", "b")
        third = await _turn(agent, "echo three", "a")
    finally:
        await deps.providers.aclose()

    assert agent.store is store
    assert stores_seen == [store, store, store]
    item = await store.aget(NAMESPACE, "count")
    assert item is not None
    assert item.value == {"n": 3}
    # The node still answers as it always does.
    assert [o["messages"][-1].content for o in (first, second, third)] == ["one", "two", "three"]


async def test_without_a_store_the_nodes_have_none(stores_seen: list[BaseStore | None]) -> None:
    deps = make_deps(["offline"], {})
    agent = build_graph(lambda: deps, checkpointer=InMemorySaver())
    try:
        await _turn(agent, "echo one", "a")
    finally:
        await deps.providers.aclose()
    assert stores_seen == [None]
