"""The wiring: properties every correct graph has, derived from the builder (no node list here).

Adding a node must not mean editing this file: each test reads the nodes and edges from
`build_builder` and checks what any correct wiring satisfies, so a node left unwired, an edge
function returning a value the builder does not map, or a streamed node that does not exist
fails here.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from langgraph.graph import END, START

from graph.builder import build_builder, build_graph
from graph.routing import GUARD, STREAMED_NODES
from tests.factories import make_deps

ROOT = Path(__file__).resolve().parents[3]


def _builder() -> Any:
    return build_builder(lambda: make_deps(["offline"], {}))


def _drawn() -> Any:
    return build_graph(lambda: make_deps(["offline"], {})).get_graph()


def _reachable(start: str, edges: Iterable[tuple[str, str]]) -> set[str]:
    successors: dict[str, set[str]] = {}
    for source, target in edges:
        successors.setdefault(source, set()).add(target)
    seen, queue = {start}, deque([start])
    while queue:
        for following in successors.get(queue.popleft(), set()) - seen:
            seen.add(following)
            queue.append(following)
    return seen


def test_the_drawing_has_every_node_the_builder_adds() -> None:
    assert set(_drawn().nodes) == {START, *_builder().nodes, END}


def test_every_node_is_reachable_from_the_start_and_reaches_the_end() -> None:
    drawn = _drawn()
    edges = [(e.source, e.target) for e in drawn.edges]
    assert _reachable(START, edges) == set(drawn.nodes)
    backwards = [(target, source) for source, target in edges]
    assert _reachable(END, backwards) == set(drawn.nodes)


def test_every_edge_function_maps_each_value_it_can_return() -> None:
    builder = _builder()
    assert builder.branches, "the graph has conditional edges"
    for source, branches in builder.branches.items():
        for name, branch in branches.items():
            # Without destinations the drawing links the source to every node.
            assert branch.ends is not None, f"{source} → {name}: declare its destinations"
            # A coroutine, so LangGraph awaits it on the loop instead of a thread-pool hop.
            assert branch.path.func is None, f"{name}: wrap it in on_loop"
            assert inspect.iscoroutinefunction(branch.path.afunc), name
            returns = get_type_hints(inspect.unwrap(branch.path.afunc))["return"]
            assert get_origin(returns) is Literal, f"{name} must return a Literal"
            assert set(get_args(returns)) == set(branch.ends), name
            assert set(branch.ends.values()) <= {*builder.nodes, END}, name


def test_the_drawing_shows_each_conditional_edge_once_per_destination() -> None:
    builder = _builder()
    drawn = {(e.source, e.target) for e in _drawn().edges if e.conditional}
    declared = {
        (source, target)
        for source, branches in builder.branches.items()
        for branch in branches.values()
        for target in (branch.ends or {}).values()
    }
    assert drawn == declared


def test_the_streamed_nodes_are_nodes_of_the_graph() -> None:
    assert GUARD in STREAMED_NODES
    assert set(STREAMED_NODES) <= set(_builder().nodes)


def _run(code: str) -> Any:
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_graph_and_nodes_import_nothing_from_server_and_compile_nothing() -> None:
    loaded = _run(
        "import json, pkgutil, importlib, sys\n"
        "import graph, nodes\n"
        "from langgraph.graph.state import CompiledStateGraph\n"
        "names = [m.name for p in (graph, nodes)"
        " for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "modules = [importlib.import_module(n) for n in names]\n"
        "compiled = [m.__name__ for m in modules"
        " if any(isinstance(v, CompiledStateGraph) for v in vars(m).values())]\n"
        "server = [m for m in sys.modules if m == 'server' or m.startswith('server.')]\n"
        "print(json.dumps({'modules': names, 'server': server, 'compiled': compiled}))\n"
    )
    assert "graph.builder" in loaded["modules"]
    assert loaded["server"] == []
    assert loaded["compiled"] == []


def test_the_langgraph_json_graph_is_this_graph_and_builds_no_services_at_import() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    path, _, attribute = config["graphs"]["agent"].partition(":")
    module = Path(path).with_suffix("").as_posix().removeprefix("./").replace("/", ".")
    loaded = _run(
        "import importlib, json\n"
        "from server.wiring.services import default_agent_deps\n"
        f"graph = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "drawn = graph.get_graph()\n"
        "print(json.dumps({'name': graph.name, 'saver': graph.checkpointer is not None,"
        " 'built': default_agent_deps.cache_info().currsize,"
        " 'edges': sorted([e.source, e.target] for e in drawn.edges)}))\n"
    )
    assert loaded["name"] == "agent"
    assert loaded["saver"] is False  # `langgraph dev` brings its own
    assert loaded["built"] == 0  # services are built on the first run, not at import
    assert loaded["edges"] == sorted([e.source, e.target] for e in _drawn().edges)
