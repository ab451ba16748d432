"""The import rules of the layout: lower layers never import higher ones, doors never each other,
and the house is at most `MAX_FLOORS` floors tall.

Read from the source (module-level and function-level `import` statements alike), so a
lazy import cannot hide an inverted dependency. Layers, lowest first (`LAYERS`):

0. `graph/`, `nodes/`: the agent itself; never imports `server`. Of `nodes/`, `server/` imports
   only the modules of `nodes.SERVER_FACE`.
1. the vocabulary: `server/store_errors.py` (which database errors mean "away"),
   `server/refusals.py` (what the service refuses, in no door's words).
2. `server/errors.py` (the one place a refusal gets its status), `server/settings/`,
   `server/auth.py`.
3. `server/stores/` (stores, locks, limits), `server/edge/` (what every request passes before
   a door), `server/openapi.py`.
4. `server/turns/` (the turn kit), `server/telemetry/`, `server/knowledge/`.
5. `server/wiring/`: settings into services, the lifespan, the app state, route dependencies.
6. the doors: `server/chat/`, `server/responses/`, `server/langserve/`, `server/mcp_server/`,
   `server/inspector/`, `server/admin/`, `server/graph_api/`; and `server/graph_entry.py`
   (`langgraph.json`'s graph).
7. `server/app.py`; 8. `server/__main__.py`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from nodes import SERVER_FACE

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("graph", "nodes", "server")

DOORS = (
    "server.chat",
    "server.responses",
    "server.langserve",
    "server.admin",
    "server.mcp_server",
    "server.inspector",
    "server.graph_api",
)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("graph", "nodes"),
    ("server.store_errors", "server.refusals"),
    ("server.errors", "server.settings", "server.auth"),
    ("server.stores", "server.edge", "server.openapi"),
    ("server.turns", "server.telemetry", "server.knowledge"),
    ("server.wiring",),
    (*DOORS, "server.graph_entry"),
    ("server.app",),
    ("server.__main__",),
)
KIT = ("server.turns.kit", "server.wiring.deps", "server.wiring.state")
MAX_FLOORS = 9
"""How tall the house may be: the longest chain of imports between rooms (a package of
`server/`, a module at its top, `graph/`, `nodes/`), as the structure drawing counts it."""


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def layer(module: str) -> int:
    """The layer of a first-party module (see the module docstring).

    Raises:
        LookupError: A module of no layer (a new room: give it one in `LAYERS`).
    """
    for number, rooms in enumerate(LAYERS):
        if _within(module, rooms):
            return number
    raise LookupError(f"{module} is in no layer: add its room to LAYERS")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    first_party = {name for name in found if name.split(".")[0] in PACKAGES}
    modules = _modules()
    # `from server.stores import health` names a module; `from server.x import f` names a
    # function of module `server.x`: keep the longest prefix that is a module.
    resolved: set[str] = set()
    for name in first_party:
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        if parts:
            resolved.add(".".join(parts))
    return resolved


@cache
def _modules() -> frozenset[str]:
    return frozenset(_module(p) for p in _sources())


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _edges() -> list[tuple[str, str]]:
    return [(_module(p), target) for p in _sources() for target in sorted(_imports(p))]


def _door(module: str) -> str | None:
    return next((d for d in DOORS if _within(module, (d,))), None)


def test_the_layer_of_every_module_is_known() -> None:
    """The rules below see every module (a typo in a package name would hide one)."""
    modules = {_module(p) for p in _sources()}
    assert {m for m in modules if m.startswith("server.chat.")}, "the /v1 door moved?"
    assert {m for m in modules if m.startswith("server.langserve.")}, "the /agent door moved?"
    assert set(KIT) <= modules
    for module in modules - {"server"}:
        layer(module)  # raises for a module of no layer


@pytest.mark.parametrize(("source", "target"), _edges(), ids=lambda value: str(value))
def test_no_module_imports_a_higher_layer(source: str, target: str) -> None:
    assert layer(target) <= layer(source), (
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
    )


def test_no_door_imports_another_door() -> None:
    crossing = [
        (source, target)
        for source, target in _edges()
        if _door(source) and _door(target) and _door(source) != _door(target)
    ]
    assert crossing == []


def test_the_rules_catch_an_inverted_import() -> None:
    """The check itself: what the old layout did is refused."""
    assert layer("server.stores.cache") < layer("server.chat.service")
    assert layer("graph.builder") < layer("server.wiring.services")
    assert layer("server.admin.health") > layer("server.wiring.deps") > layer("server.stores.cache")
    # The turn kit once counted turns through telemetry, and telemetry read thread ids
    # through the turn: each is told what it needs instead (a counter, a header reader).
    assert layer("server.telemetry.middleware") == layer("server.turns.kit")


def _room(module: str) -> str:
    """The room of a module in the structure drawing: `graph`, `nodes`, a package of
    `server/` or a module at its top."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "server" else parts[0]


def _room_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for source, target in _edges():
        a, b = _room(source), _room(target)
        # graph/builder.py wires the nodes: the one arrow that runs back up, not a floor.
        if a != b and b != "server" and (a, b) != ("graph", "nodes"):
            edges.setdefault(a, set()).add(b)
    return edges


def floors(edges: dict[str, set[str]] | None = None) -> dict[str, int]:
    """Each room's floor: 1 + the highest floor it imports from (1 for a room that imports none).

    Raises:
        RecursionError: Rooms that import each other in a circle.
    """
    edges = _room_edges() if edges is None else edges
    found: dict[str, int] = {}

    def floor(room: str, seen: tuple[str, ...] = ()) -> int:
        if room in seen:
            raise RecursionError(f"rooms import each other: {' -> '.join((*seen, room))}")
        if room not in found:
            below = [floor(t, (*seen, room)) for t in edges.get(room, ())]
            found[room] = 1 + max(below, default=0)
        return found[room]

    for room in ({_room(m) for m in _modules()} | set(edges)) - {"server"}:
        floor(room)
    return found


def test_the_house_is_at_most_max_floors_tall_and_has_no_circle() -> None:
    """A long chain of rooms is a layout nobody can hold in their head (and slow to import)."""
    tallest = max(floors().items(), key=lambda item: item[1])
    assert tallest[1] <= MAX_FLOORS, f"{tallest[0]} is on floor {tallest[1]}"


def test_the_floor_count_sees_a_taller_house_and_a_circle() -> None:
    """The count itself: a room on top of the tallest is one floor more; a circle is refused."""
    counted = floors()
    top = max(counted, key=counted.__getitem__)
    edges = _room_edges()
    edges["server.new_top"] = {top}
    assert floors(edges)["server.new_top"] == counted[top] + 1
    edges["server.refusals"] = {"server.new_top"}
    with pytest.raises(RecursionError):
        floors(edges)


def _server_uses_of_nodes() -> list[tuple[str, str]]:
    """(server module, nodes module) of every import; `from nodes import x` names `nodes.x`."""
    return [
        (source, target)
        for source, target in _edges()
        if _within(source, ("server",)) and _within(target, ("nodes",)) and target != "nodes"
    ]


def _face() -> set[str]:
    return {module for group in SERVER_FACE.values() for module in group}


def test_server_imports_only_the_public_face_of_nodes() -> None:
    """`nodes.SERVER_FACE` lists what server/ may use; the rest of nodes/ is the graph's."""
    outside = [(s, t) for s, t in _server_uses_of_nodes() if t not in _face()]
    assert outside == [], "add the module to nodes.SERVER_FACE, or use one that is there"


def test_the_public_face_of_nodes_is_exactly_what_server_uses() -> None:
    """Each listed module exists and server/ still imports it (else: drop it from the list)."""
    assert _face() <= _modules(), f"not modules: {sorted(_face() - _modules())}"
    assert _face() == {target for _, target in _server_uses_of_nodes()}
