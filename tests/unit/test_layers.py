"""The import rules of the layout: lower layers never import higher ones, doors never each other.

Read from the source (module-level and function-level `import` statements alike), so a
lazy import cannot hide an inverted dependency. Layers, lowest first:

0. `graph/`, `nodes/`: the agent itself; never imports `server`.
1. the shared edge of `server/`: settings, errors, auth, limits, ..., and the turn's vocabulary
   (`server/turns/threads.py`, `disconnect.py`, `errors.py`: thread ids, a client gone, a refusal).
2. `server/stores/`, `server/telemetry/`, `server/knowledge/`: stores, guards and instruments; no
   door, no app state.
3. `server/state.py`, `server/deps.py`, `server/turns/`: the app's state and the turn kit.
4. the doors: `server/chat/`, `server/responses/`, `server/langserve/`, `server/mcp_server/`,
   `server/inspector/` (the HTML thread inspector), and `server/admin/` (health, admin,
   metrics routes).
5. composition: `server/wiring.py`, `server/lifespan.py`, `server/app.py`, the entry points.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("graph", "nodes", "server")

DOORS = (
    "server.chat",
    "server.responses",
    "server.langserve",
    "server.admin",
    "server.mcp_server",
    "server.inspector",
)
KIT = ("server.state", "server.deps", "server.turns")
TURN_VOCABULARY = ("server.turns.threads", "server.turns.disconnect", "server.turns.errors")
"""What the edge and the error handlers name of the turn: thread ids, a client gone, a refusal."""
COMPOSITION = (
    "server.wiring",
    "server.lifespan",
    "server.app",
    "server.__main__",
    "server.graph_entry",
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def layer(module: str) -> int:
    """The layer of a first-party module (see the module docstring)."""
    if _within(module, ("graph", "nodes")):
        return 0
    if _within(module, COMPOSITION):
        return 5
    if _within(module, DOORS):
        return 4
    if _within(module, TURN_VOCABULARY):
        return 1
    if _within(module, KIT):
        return 3
    if _within(module, ("server.stores", "server.telemetry", "server.knowledge")):
        return 2
    return 1


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
    assert layer("graph.builder") < layer("server.wiring")
    assert layer("server.admin.health") > layer("server.deps") > layer("server.stores.cache")
