"""The compiled graph has exactly the nodes and edges of DESIGN.md."""

from __future__ import annotations

from graph.builder import build_graph, graph
from tests.factories import make_deps


def edges(compiled: object) -> set[tuple[str, str, bool]]:
    drawn = compiled.get_graph()  # type: ignore[attr-defined]
    return {(e.source, e.target, e.conditional) for e in drawn.edges}


def test_nodes_and_edges() -> None:
    compiled = build_graph(lambda: make_deps(["offline"], {}))
    drawn = compiled.get_graph()

    assert set(drawn.nodes) == {
        "__start__",
        "guard",
        "router",
        "fallback_provider",
        "tools",
        "client_tools",
        "respond",
        "__end__",
    }
    assert edges(compiled) == {
        ("__start__", "guard", False),
        ("guard", "router", True),
        ("guard", "__end__", True),
        ("router", "fallback_provider", True),
        ("router", "respond", True),
        ("fallback_provider", "tools", True),
        ("fallback_provider", "respond", True),
        ("fallback_provider", "client_tools", True),
        ("tools", "fallback_provider", True),
        ("tools", "client_tools", True),
        ("client_tools", "fallback_provider", False),
        ("respond", "__end__", False),
    }


def test_module_level_graph_for_langgraph_json_builds_without_io() -> None:
    # Importing and compiling must not read settings or open anything: deps come at run time.
    assert graph.name == "agent"
    assert graph.checkpointer is None
    assert set(graph.get_graph().nodes) >= {"router", "fallback_provider", "tools", "respond"}
