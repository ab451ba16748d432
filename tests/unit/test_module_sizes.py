"""Small modules: no source file of graph/, nodes/, server/ over 400 lines, and a short server/ top.

A module that outgrows the limit is split by meaning (a package with its parts, or a sibling
module), not trimmed of docstrings; new server code goes into one of server/'s packages
rather than straight into server/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("graph", "nodes", "server")
MAX_LINES = 400
MAX_SERVER_TOP_MODULES = 16
"""Modules directly in server/, besides `__init__.py` and `__main__.py`."""


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _server_top_modules() -> list[str]:
    return sorted(
        p.name
        for p in (ROOT / "server").glob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )


def test_the_sources_are_found() -> None:
    """The checks below see the packages (a moved root would pass them vacuously)."""
    found = {p.relative_to(ROOT).parts[0] for p in _sources()}
    assert found == set(PACKAGES)
    assert "app.py" in _server_top_modules()


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    lines = _lines(path)
    assert lines <= MAX_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES}): split it by meaning"
    )


def test_server_has_at_most_16_modules_at_its_top() -> None:
    top = _server_top_modules()
    assert len(top) <= MAX_SERVER_TOP_MODULES, (
        f"server/ has {len(top)} modules at its top (at most {MAX_SERVER_TOP_MODULES}): "
        f"move some into a package: {', '.join(top)}"
    )
